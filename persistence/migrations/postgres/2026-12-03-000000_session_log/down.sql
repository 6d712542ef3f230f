DROP TABLE session_log;
