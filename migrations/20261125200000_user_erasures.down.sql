DROP TABLE IF EXISTS user_erasures;
