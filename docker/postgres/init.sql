-- Run once by the compose stack's postgres service (the "debezium" profile): the on-prem source of shop.customers,
-- the table the cloud copy in Cassandra holds (docker/cassandra/init.cql), and the connector's signalling table.
CREATE SCHEMA IF NOT EXISTS shop;
CREATE TABLE IF NOT EXISTS shop.customers (
    id text PRIMARY KEY,
    name text,
    amount numeric(12, 2),
    updated_at timestamp(3),
    notes text
);
-- Incremental snapshots (dqhash repair signal) are driven through the Kafka signal channel; Debezium still wants
-- a signalling table to record their progress in.
CREATE TABLE IF NOT EXISTS shop.debezium_signal (id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data text);
INSERT INTO shop.customers VALUES
    ('c-1', 'Ada', 12.50, '2024-05-01 12:00:00.123', 'first'),
    ('c-2', 'Grace', 99.00, '2024-05-01 12:00:01.000', NULL)
ON CONFLICT (id) DO NOTHING;
