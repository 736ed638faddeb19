DROP TRIGGER users_referral_anonymise ON users;
DROP FUNCTION referral_anonymise();
DROP TABLE referrals;
DROP TABLE referral_codes;
DROP TABLE referral_policies;
