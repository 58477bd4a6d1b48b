-- stage_windows: stage-by-stage conversion, time in stage and stale open deals, per snapshot.
--   Exits (stage_runs rows that leave an open run whose stage is known) count on the day they
--   became known (k = valid_from). An exit "moved on" when the deal went to another open stage or
--   was won rather than lost. Over the last 180 days: exits from early stages (before proposal,
--   is_late = 0) and from late ones, and how many moved on; over the last 91 days: exits and the
--   days their runs lasted.
--   Open deals on the as-of day (delta encoding as in pipeline_asof): how many have a known stage
--   and the sum of their runs' start days, so that their mean days since the change into the
--   current stage is as_of + 1 - sum / n (a run starting on valid_from began the day before).
WITH exit_days AS (
    SELECT
        rep_key,
        valid_from AS k,
        CAST(SUM(CASE WHEN prev_late = 0 THEN 1 ELSE 0 END) AS DOUBLE) AS n_exit_early,
        CAST(SUM(CASE WHEN prev_late = 0 AND (is_closed = 0 OR is_won = 1) THEN 1 ELSE 0 END) AS DOUBLE)
            AS n_on_early,
        CAST(SUM(CASE WHEN prev_late = 1 THEN 1 ELSE 0 END) AS DOUBLE) AS n_exit_late,
        CAST(SUM(CASE WHEN prev_late = 1 AND (is_closed = 0 OR is_won = 1) THEN 1 ELSE 0 END) AS DOUBLE)
            AS n_on_late,
        CAST(COUNT(*) AS DOUBLE) AS n_exit,
        CAST(SUM(valid_from - prev_run_start) AS DOUBLE) AS run_days
    FROM stage_runs
    WHERE is_start = 1 AND prev_closed = 0 AND prev_late IS NOT NULL
    GROUP BY rep_key, valid_from
),
exit_u AS (
    SELECT rep_key, k, CAST(NULL AS BIGINT) AS snap_id, n_exit_early, n_on_early, n_exit_late, n_on_late,
           n_exit, run_days
    FROM exit_days
    UNION ALL
    SELECT rep_key, as_of AS k, snap_id, 0, 0, 0, 0, 0, 0
    FROM stg_snapshots
),
exit_w AS (
    SELECT
        snap_id,
        SUM(n_exit_early) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 179 PRECEDING AND CURRENT ROW)
            AS n_exit_early_180,
        SUM(n_on_early) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 179 PRECEDING AND CURRENT ROW)
            AS n_on_early_180,
        SUM(n_exit_late) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 179 PRECEDING AND CURRENT ROW)
            AS n_exit_late_180,
        SUM(n_on_late) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 179 PRECEDING AND CURRENT ROW)
            AS n_on_late_180,
        SUM(n_exit) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 90 PRECEDING AND CURRENT ROW)
            AS n_exit_91,
        SUM(n_exit_early + n_exit_late) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 363 PRECEDING AND CURRENT ROW)
            AS n_exit_364,
        SUM(n_on_early + n_on_late) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 363 PRECEDING AND CURRENT ROW)
            AS n_on_364,
        SUM(run_days) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 90 PRECEDING AND CURRENT ROW)
            AS run_days_91
    FROM exit_u
),
open_iv AS (
    SELECT rep_key, valid_from, valid_to, CAST(run_start AS DOUBLE) AS run_start
    FROM stage_runs
    WHERE is_closed = 0 AND stage_code IS NOT NULL AND is_late IS NOT NULL
),
open_u AS (
    SELECT rep_key, k, CAST(NULL AS BIGINT) AS snap_id, CAST(SUM(n) AS DOUBLE) AS n, CAST(SUM(st) AS DOUBLE) AS st
    FROM (
        SELECT rep_key, valid_from AS k, 1 AS n, run_start AS st FROM open_iv
        UNION ALL
        SELECT rep_key, valid_to AS k, -1 AS n, -run_start AS st FROM open_iv WHERE valid_to IS NOT NULL
    ) d
    GROUP BY rep_key, k
    UNION ALL
    SELECT rep_key, as_of AS k, snap_id, 0, 0
    FROM stg_snapshots
),
open_cum AS (
    SELECT
        snap_id,
        SUM(n) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            AS n_open_staged,
        SUM(st) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            AS open_run_start_sum
    FROM open_u
)
SELECT
    e.snap_id,
    e.n_exit_early_180, e.n_on_early_180, e.n_exit_late_180, e.n_on_late_180, e.n_exit_91, e.run_days_91,
    e.n_exit_364, e.n_on_364,
    o.n_open_staged, o.open_run_start_sum
FROM exit_w e
JOIN open_cum o ON o.snap_id = e.snap_id
WHERE e.snap_id IS NOT NULL
