DROP TABLE match_history;
DROP TABLE results;
DROP TABLE checkpoints;
DROP TABLE sessions;
DROP TABLE maps;
DROP TABLE players;
