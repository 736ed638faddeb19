DROP TABLE IF EXISTS audit_log;
DROP TABLE IF EXISTS account_sessions;
DROP TABLE IF EXISTS account_activations;
DROP TABLE IF EXISTS accounts;
