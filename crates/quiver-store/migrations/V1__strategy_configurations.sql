-- Strategy configurations (seed 004's table, with what a strategies-file row
-- holds beyond it in `options`), and the file-level sections.
CREATE TABLE strategy_configurations (
    id             TEXT PRIMARY KEY,
    strategy_type  TEXT NOT NULL,
    parameters     JSONB NOT NULL DEFAULT '{}'::jsonb,
    active_brokers TEXT[] NOT NULL DEFAULT ARRAY['paper'],
    instruments    BIGINT[] NOT NULL DEFAULT '{}',
    enabled        BOOLEAN NOT NULL DEFAULT TRUE,
    validator_type TEXT,
    -- validator (as a mapping), validators, priority, budget_us_per_tick
    options        JSONB NOT NULL DEFAULT '{}'::jsonb,
    -- Order of the rows, as in a strategies file.
    position       INTEGER NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- models, lifecycle, history_budget_mib
CREATE TABLE strategy_set_options (
    key   TEXT PRIMARY KEY,
    value JSONB NOT NULL
);

-- A running service listens on this channel and reloads.
CREATE FUNCTION quiver_strategy_configurations_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('quiver_strategy_configurations', TG_OP);
    RETURN NULL;
END
$$;

CREATE TRIGGER strategy_configurations_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON strategy_configurations
    FOR EACH STATEMENT EXECUTE FUNCTION quiver_strategy_configurations_changed();

CREATE TRIGGER strategy_set_options_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON strategy_set_options
    FOR EACH STATEMENT EXECUTE FUNCTION quiver_strategy_configurations_changed();
