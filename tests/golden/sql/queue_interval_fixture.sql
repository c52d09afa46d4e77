-- queue_interval_fixture.sql - hand-checked queue_interval deltas for tests/integration/schema_views.sh.
--
-- Run as callpipe_writer.  Uses the upsert the aggregator uses (schema/README.md): counters and
-- sums add, maxima take GREATEST, histograms add element-wise.  Interval 10:00 of queue
-- acme/sales arrives as two deltas (A1, A2) to exercise that.
--
-- Waits behind the numbers (ms; SL threshold 20000, '<='; bucket = callpipe_wait_bucket):
--   10:00 A1 answered 1000(b1) 3000(b1) 21000(b6): sum 25000, max 21000, within 2
--            abandoned 4000(b1) 11000(b4): sum 15000, max 11000, within 2, short 1
--   10:00 A2 answered 4000(b1) 7000(b2) 24000(b6): sum 35000, max 24000, within 2
--            abandoned 30000(b7): sum 30000, max 30000, within 0
--   10:15 B  answered 10000(b3) 25000(b6) 25000(b6) 40000(b8): sum 100000, max 40000, within 1
--            abandoned 70000(b10): sum 70000, max 70000, within 0
--   10:30 C  nothing but one transfer in: every rate and average is NULL
--   10:45 D  answered 2000(b1) 5000(b1): sum 7000, max 5000, within 2
--   11:00    (other hour) 100 offered, 100 answered within SL waiting 1000 ms each, 100 handled
--            with 1000 ms talk each
-- plus acme/support 10:00 and other/sales 10:00 for grouping and settings precedence.

INSERT INTO queue_interval AS t (
    org, queue, interval_start, offered, answered, abandoned, short_abandoned, timed_out,
    transferred_in, handled, held, answered_within_sl, abandoned_within_sl, answered_wait_ms,
    abandoned_wait_ms, talk_ms, hold_ms, acw_ms, handle_ms, answered_wait_max_ms,
    abandoned_wait_max_ms, answered_wait_hist, abandoned_wait_hist)
VALUES
    -- A1
    ('acme', 'sales', '2024-03-01 10:00:00+00', 6, 3, 2, 1, 1, 0, 2, 0, 2, 2, 25000, 15000,
     200000, 0, 50000, 250000, 21000, 11000,
     '{2,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,0}', '{1,0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0}'),
    -- B
    ('acme', 'sales', '2024-03-01 10:15:00+00', 5, 4, 1, 0, 0, 0, 7, 2, 1, 0, 100000, 70000,
     1000000, 100000, 300000, 1400000, 40000, 70000,
     '{0,0,1,0,0,2,0,1,0,0,0,0,0,0,0,0,0}', '{0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0}'),
    -- C
    ('acme', 'sales', '2024-03-01 10:30:00+00', 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
     0, 0, 0, 0, 0, 0,
     '{0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}', '{0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}'),
    -- D
    ('acme', 'sales', '2024-03-01 10:45:00+00', 3, 2, 0, 0, 0, 0, 0, 0, 2, 0, 7000, 0,
     0, 0, 0, 0, 5000, 0,
     '{2,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}', '{0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}'),
    -- the next hour
    ('acme', 'sales', '2024-03-01 11:00:00+00', 100, 100, 0, 0, 0, 0, 100, 0, 100, 0, 100000, 0,
     100000, 0, 0, 100000, 1000, 0,
     '{100,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}', '{0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}'),
    -- another queue of the same org: 3 answered (2 within), 1 abandoned (within)
    ('acme', 'support', '2024-03-01 10:00:00+00', 4, 3, 1, 0, 0, 0, 0, 0, 2, 1, 30000, 5000,
     0, 0, 0, 0, 20000, 5000,
     '{0,0,1,0,2,0,0,0,0,0,0,0,0,0,0,0,0}', '{1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}'),
    -- another org with no settings of its own: the global default applies
    ('other', 'sales', '2024-03-01 10:00:00+00', 4, 3, 1, 0, 0, 0, 0, 0, 2, 1, 30000, 5000,
     0, 0, 0, 0, 20000, 5000,
     '{0,0,1,0,2,0,0,0,0,0,0,0,0,0,0,0,0}', '{1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}')
ON CONFLICT (org, queue, interval_start) DO UPDATE SET
    offered = t.offered + EXCLUDED.offered,
    answered = t.answered + EXCLUDED.answered,
    abandoned = t.abandoned + EXCLUDED.abandoned,
    short_abandoned = t.short_abandoned + EXCLUDED.short_abandoned,
    timed_out = t.timed_out + EXCLUDED.timed_out,
    transferred_in = t.transferred_in + EXCLUDED.transferred_in,
    handled = t.handled + EXCLUDED.handled,
    held = t.held + EXCLUDED.held,
    answered_within_sl = t.answered_within_sl + EXCLUDED.answered_within_sl,
    abandoned_within_sl = t.abandoned_within_sl + EXCLUDED.abandoned_within_sl,
    answered_wait_ms = t.answered_wait_ms + EXCLUDED.answered_wait_ms,
    abandoned_wait_ms = t.abandoned_wait_ms + EXCLUDED.abandoned_wait_ms,
    talk_ms = t.talk_ms + EXCLUDED.talk_ms,
    hold_ms = t.hold_ms + EXCLUDED.hold_ms,
    acw_ms = t.acw_ms + EXCLUDED.acw_ms,
    handle_ms = t.handle_ms + EXCLUDED.handle_ms,
    answered_wait_max_ms = GREATEST(t.answered_wait_max_ms, EXCLUDED.answered_wait_max_ms),
    abandoned_wait_max_ms = GREATEST(t.abandoned_wait_max_ms, EXCLUDED.abandoned_wait_max_ms),
    answered_wait_hist = callpipe_int_array_add(t.answered_wait_hist, EXCLUDED.answered_wait_hist),
    abandoned_wait_hist = callpipe_int_array_add(t.abandoned_wait_hist, EXCLUDED.abandoned_wait_hist),
    updated_at = now();

-- A2: the second delta of acme/sales 10:00, into the existing row.
INSERT INTO queue_interval AS t (
    org, queue, interval_start, offered, answered, abandoned, short_abandoned, timed_out,
    transferred_in, handled, held, answered_within_sl, abandoned_within_sl, answered_wait_ms,
    abandoned_wait_ms, talk_ms, hold_ms, acw_ms, handle_ms, answered_wait_max_ms,
    abandoned_wait_max_ms, answered_wait_hist, abandoned_wait_hist)
VALUES
    ('acme', 'sales', '2024-03-01 10:00:00+00', 4, 3, 1, 0, 0, 0, 3, 1, 2, 0, 35000, 30000,
     400000, 30000, 70000, 500000, 24000, 30000,
     '{1,1,0,0,0,1,0,0,0,0,0,0,0,0,0,0,0}', '{0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0}')
ON CONFLICT (org, queue, interval_start) DO UPDATE SET
    offered = t.offered + EXCLUDED.offered,
    answered = t.answered + EXCLUDED.answered,
    abandoned = t.abandoned + EXCLUDED.abandoned,
    short_abandoned = t.short_abandoned + EXCLUDED.short_abandoned,
    timed_out = t.timed_out + EXCLUDED.timed_out,
    transferred_in = t.transferred_in + EXCLUDED.transferred_in,
    handled = t.handled + EXCLUDED.handled,
    held = t.held + EXCLUDED.held,
    answered_within_sl = t.answered_within_sl + EXCLUDED.answered_within_sl,
    abandoned_within_sl = t.abandoned_within_sl + EXCLUDED.abandoned_within_sl,
    answered_wait_ms = t.answered_wait_ms + EXCLUDED.answered_wait_ms,
    abandoned_wait_ms = t.abandoned_wait_ms + EXCLUDED.abandoned_wait_ms,
    talk_ms = t.talk_ms + EXCLUDED.talk_ms,
    hold_ms = t.hold_ms + EXCLUDED.hold_ms,
    acw_ms = t.acw_ms + EXCLUDED.acw_ms,
    handle_ms = t.handle_ms + EXCLUDED.handle_ms,
    answered_wait_max_ms = GREATEST(t.answered_wait_max_ms, EXCLUDED.answered_wait_max_ms),
    abandoned_wait_max_ms = GREATEST(t.abandoned_wait_max_ms, EXCLUDED.abandoned_wait_max_ms),
    answered_wait_hist = callpipe_int_array_add(t.answered_wait_hist, EXCLUDED.answered_wait_hist),
    abandoned_wait_hist = callpipe_int_array_add(t.abandoned_wait_hist, EXCLUDED.abandoned_wait_hist),
    updated_at = now();

-- Settings: acme's own default (queue '*') uses variant (a); acme/sales switches to (c) with
-- a 15 s threshold and 5 s short abandons from 10:30.  Org "other" has none: global default (b).
INSERT INTO queue_settings (org, queue, valid_from, abandon_mode) VALUES
    ('acme', '*', '-infinity', 'ignore');
INSERT INTO queue_settings (org, queue, valid_from, sl_threshold_ms, short_abandon_ms, abandon_mode) VALUES
    ('acme', 'sales', '2024-03-01 10:30:00+00', 15000, 5000, 'positive');

INSERT INTO queue_disposition_interval AS t (org, queue, interval_start, disposition, calls, handle_ms) VALUES
    ('acme', 'sales', '2024-03-01 10:00:00+00', 'answered', 2, 300000),
    ('acme', 'sales', '2024-03-01 10:15:00+00', 'answered', 1, 60000),
    ('acme', 'sales', '2024-03-01 10:15:00+00', 'canceled', 3, 0)
ON CONFLICT (org, queue, interval_start, disposition) DO UPDATE SET
    calls = t.calls + EXCLUDED.calls, handle_ms = t.handle_ms + EXCLUDED.handle_ms, updated_at = now();

INSERT INTO queue_wrapup_interval AS t (org, queue, interval_start, wrapup, calls, handle_ms) VALUES
    ('acme', 'sales', '2024-03-01 10:00:00+00', 'sale', 1, 100000),
    ('acme', 'sales', '2024-03-01 10:30:00+00', 'sale', 2, 500000)
ON CONFLICT (org, queue, interval_start, wrapup) DO UPDATE SET
    calls = t.calls + EXCLUDED.calls, handle_ms = t.handle_ms + EXCLUDED.handle_ms, updated_at = now();
