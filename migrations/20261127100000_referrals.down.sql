DROP TABLE referrals;
DROP TABLE referral_codes;
DROP TABLE referral_policies;
