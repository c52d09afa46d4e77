-- 006_views.sql - schema reporting: the dashboards' views (ASA, AHT, rates, service levels) per grain.
--
-- callpipe_reader may read these views and nothing else.  The views belong to the migration
-- owner, so they read the base tables with the owner's rights and the reader needs none.
-- Averages and rates are computed here from the additive sums and counts, at every grain from
-- the rolled-up numerators and denominators (never averages of averages); an empty
-- denominator gives NULL.  Grains are UTC: 15 min, 30 min, 1 hour, 1 day.
CREATE SCHEMA reporting;
COMMENT ON SCHEMA reporting IS 'views for dashboards; the only objects callpipe_reader may read';
REVOKE ALL ON SCHEMA reporting FROM PUBLIC;
GRANT USAGE ON SCHEMA reporting TO callpipe_reader, callpipe_writer;

-- Element-wise sum of wait histograms when rolling intervals up.
CREATE AGGREGATE reporting.int_array_sum(integer[]) (
    SFUNC = public.callpipe_int_array_add,
    STYPE = integer[],
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE reporting.int_array_sum(integer[]) IS 'element-wise sum of equal-length integer arrays';
REVOKE ALL ON FUNCTION reporting.int_array_sum(integer[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION reporting.int_array_sum(integer[]) TO callpipe_reader, callpipe_writer;

-- The wait histogram buckets of queue_interval: bucket i counts waits in (lower_ms, upper_ms];
-- upper_ms NULL = no upper bound.
CREATE VIEW reporting.wait_buckets AS
SELECT b.bucket::integer AS bucket,
       coalesce(lag(b.upper_s) OVER (ORDER BY b.bucket), 0)::bigint * 1000 AS lower_ms,
       b.upper_s::bigint * 1000 AS upper_ms
FROM unnest(ARRAY[5, 8, 10, 15, 20, 25, 30, 45, 60, 90, 120, 180, 240, 300, 600, 1200, NULL])
     WITH ORDINALITY AS b(upper_s, bucket);
COMMENT ON VIEW reporting.wait_buckets IS
    'bounds of the wait histogram buckets (1-based): lower_ms < wait <= upper_ms; upper_ms NULL = +inf';

-- Settings rows as stored (for dashboards that show thresholds).
CREATE VIEW reporting.queue_settings AS
SELECT org, queue, valid_from, sl_threshold_ms, sl_compare, short_abandon_ms, abandon_mode, updated_at
FROM public.queue_settings;
COMMENT ON VIEW reporting.queue_settings IS 'per-queue service-level settings with valid_from';

-- One view per grain for queue_interval, queue_disposition_interval and queue_wrapup_interval,
-- generated so that every grain shares one definition of each formula.  For 15 min the rows
-- are read as they are; coarser grains sum counters and sums, take max of maxima and sum the
-- histograms element-wise.  The settings (threshold, abandon mode) are those in force at the
-- start of the (rolled-up) interval.
DO $$
DECLARE
    additive text[] := ARRAY[
        'offered', 'answered', 'abandoned', 'short_abandoned', 'timed_out', 'key_exit',
        'queue_full', 'callback', 'voicemail', 'transferred_out_of_queue', 'other_flowout',
        'transferred_in', 'transferred_out', 'agent_noanswer', 'handled', 'held',
        'answered_within_sl', 'abandoned_within_sl',
        'answered_wait_ms', 'abandoned_wait_ms', 'talk_ms', 'hold_ms', 'acw_ms', 'handle_ms'];
    maxima text[] := ARRAY['answered_wait_max_ms', 'abandoned_wait_max_ms'];
    hists text[] := ARRAY['answered_wait_hist', 'abandoned_wait_hist'];
    g record;
    bucket_expr text;
    sel text;
    grp text;
    src text;
BEGIN
    FOR g IN SELECT * FROM (VALUES ('15m', '15 minutes'), ('30m', '30 minutes'), ('1h', '1 hour'),
                                   ('1d', '1 day')) AS v(suffix, len)
    LOOP
        IF g.suffix = '15m' THEN
            bucket_expr := 'interval_start';
            sel := (SELECT string_agg(format('%I::bigint AS %I', c, c), ', ') FROM unnest(additive) c)
                || ', ' || (SELECT string_agg(format('%I', c), ', ') FROM unnest(maxima) c)
                || ', ' || (SELECT string_agg(format('%I', c), ', ') FROM unnest(hists) c);
            grp := '';
        ELSE
            bucket_expr := format('date_bin(%L::interval, interval_start, ''2000-01-01 00:00:00+00''::timestamptz)',
                                  g.len);
            sel := (SELECT string_agg(format('sum(%I)::bigint AS %I', c, c), ', ') FROM unnest(additive) c)
                || ', ' || (SELECT string_agg(format('max(%I) AS %I', c, c), ', ') FROM unnest(maxima) c)
                || ', ' || (SELECT string_agg(format('reporting.int_array_sum(%I) AS %I', c, c), ', ')
                            FROM unnest(hists) c);
            grp := ' GROUP BY 1, 2, 3';
        END IF;
        src := format('SELECT org, queue, %s AS interval_start, %s FROM public.queue_interval%s',
                      bucket_expr, sel, grp);

        EXECUTE format($v$
CREATE VIEW reporting.%I AS
SELECT s.org, s.queue, s.interval_start, s.interval_start + %L::interval AS interval_end,
       %s,
       st.sl_threshold_ms, st.sl_compare, st.short_abandon_ms, st.abandon_mode,
       s.answered_wait_ms::numeric / NULLIF(s.answered, 0) AS asa_ms,
       s.abandoned_wait_ms::numeric / NULLIF(s.abandoned, 0) AS avg_abandon_ms,
       s.handle_ms::numeric / NULLIF(s.handled, 0) AS aht_ms,
       s.abandoned::numeric / NULLIF(s.offered, 0) AS abandon_rate,
       s.answered::numeric / NULLIF(s.offered, 0) AS answer_rate,
       s.answered_within_sl::numeric / NULLIF(s.answered, 0) AS sl_ignore,
       s.answered_within_sl::numeric / NULLIF(s.answered + s.abandoned, 0) AS sl_negative,
       (s.answered_within_sl + s.abandoned_within_sl)::numeric / NULLIF(s.answered + s.abandoned, 0)
           AS sl_positive,
       CASE st.abandon_mode
           WHEN 'ignore' THEN s.answered_within_sl::numeric / NULLIF(s.answered, 0)
           WHEN 'negative' THEN s.answered_within_sl::numeric / NULLIF(s.answered + s.abandoned, 0)
           WHEN 'positive' THEN (s.answered_within_sl + s.abandoned_within_sl)::numeric
                                / NULLIF(s.answered + s.abandoned, 0)
       END AS service_level
FROM (%s) AS s
LEFT JOIN LATERAL (
    SELECT qs.sl_threshold_ms, qs.sl_compare, qs.short_abandon_ms, qs.abandon_mode
    FROM public.queue_settings AS qs
    WHERE qs.org IN (s.org, '*') AND qs.queue IN (s.queue, '*') AND qs.valid_from <= s.interval_start
    ORDER BY qs.org = '*', qs.queue = '*', qs.valid_from DESC
    LIMIT 1
) AS st ON true
$v$, 'queue_interval_' || g.suffix, g.len,
            (SELECT string_agg(format('s.%I', c), ', ') FROM unnest(additive || maxima || hists) c),
            src);
        EXECUTE format('COMMENT ON VIEW reporting.%I IS %L', 'queue_interval_' || g.suffix,
                       format('queue metrics per (org, queue, %s UTC interval): sums, ASA, AHT, rates, service levels',
                              g.len));

        -- Dispositions and wrap-up codes: counts, handle sums and average handle time.
        EXECUTE format($v$
CREATE VIEW reporting.%I AS
SELECT org, queue, %s AS interval_start, %s + %L::interval AS interval_end, disposition,
       sum(calls)::bigint AS calls, sum(handle_ms)::bigint AS handle_ms,
       sum(handle_ms)::numeric / NULLIF(sum(calls), 0) AS avg_handle_ms
FROM public.queue_disposition_interval
GROUP BY 1, 2, 3, 4, 5
$v$, 'queue_disposition_' || g.suffix, bucket_expr, bucket_expr, g.len);
        EXECUTE format('COMMENT ON VIEW reporting.%I IS %L', 'queue_disposition_' || g.suffix,
                       format('finished calls per telephony disposition per (org, queue, %s UTC interval)', g.len));

        EXECUTE format($v$
CREATE VIEW reporting.%I AS
SELECT org, queue, %s AS interval_start, %s + %L::interval AS interval_end, wrapup,
       sum(calls)::bigint AS calls, sum(handle_ms)::bigint AS handle_ms,
       sum(handle_ms)::numeric / NULLIF(sum(calls), 0) AS avg_handle_ms
FROM public.queue_wrapup_interval
GROUP BY 1, 2, 3, 4, 5
$v$, 'queue_wrapup_' || g.suffix, bucket_expr, bucket_expr, g.len);
        EXECUTE format('COMMENT ON VIEW reporting.%I IS %L', 'queue_wrapup_' || g.suffix,
                       format('handled calls per wrap-up code per (org, queue, %s UTC interval)', g.len));
    END LOOP;
END
$$;

-- Live wallboard: the aggregator's snapshot plus the current longest wait.
CREATE VIEW reporting.queue_now AS
SELECT org, queue, calls_waiting, oldest_waiting_since,
       (extract(epoch FROM now() - oldest_waiting_since) * 1000)::bigint AS longest_wait_ms,
       agents_connected, updated_at
FROM public.queue_now;
COMMENT ON VIEW reporting.queue_now IS 'live per-queue snapshot; longest_wait_ms is as of now(), NULL when nobody waits';

-- Abandoned callers with their numbers and wait, for call-back lists.  short_abandon follows
-- the queue's settings in force when the call entered the queue.
CREATE VIEW reporting.abandoned_calls AS
SELECT c.org, c.queue, c.pbx, c.call_id, c.from_number, c.from_name, c.to_number,
       c.queued_at, c.ended_at, c.wait_ms,
       coalesce(st.short_abandon_ms > 0 AND c.wait_ms <= st.short_abandon_ms, false) AS short_abandon,
       c.source
FROM public.calls AS c
LEFT JOIN LATERAL (
    SELECT qs.short_abandon_ms
    FROM public.queue_settings AS qs
    WHERE qs.org IN (c.org, '*') AND qs.queue IN (c.queue, '*')
      AND qs.valid_from <= coalesce(c.queued_at, c.ended_at)
    ORDER BY qs.org = '*', qs.queue = '*', qs.valid_from DESC
    LIMIT 1
) AS st ON true
WHERE c.queue_outcome = 'abandoned';
COMMENT ON VIEW reporting.abandoned_calls IS 'abandoned queue calls with caller number and wait, for call-backs';

-- Salesforce sync progress per target org and outbox state.
CREATE VIEW reporting.sf_outbox_status AS
SELECT target_org, state, count(*)::bigint AS calls, min(created_at) AS oldest_created_at,
       max(updated_at) AS last_updated_at
FROM public.sf_outbox
GROUP BY target_org, state;
COMMENT ON VIEW reporting.sf_outbox_status IS 'outbox rows per Salesforce target org and state';

-- Every view of the schema, present and generated above; services may read them too.
GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO callpipe_reader, callpipe_writer;
