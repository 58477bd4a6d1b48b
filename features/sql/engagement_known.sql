-- engagement_known: the contract's known engagement metrics as named features, one row per snapshot.
-- A metric is "tracked" for a snapshot once it appears anywhere in the data before the as-of day.
--   means (pulse, csat, after-hours): over the measurements in the window; NULL without any
--     (no pulse answer is not a pulse of 0);
--   totals and counts (leave, 1:1s, training, peer sessions): 0 when tracked but nothing recorded
--     for the rep, NULL when the metric is not tracked at all, and NULL for a rep with no engagement
--     row of any metric before the as-of day (a rep the HR/LMS export does not cover: unknown, not
--     "no 1:1s"); the same for CRM logins and days since leave;
--   per-week rates (CRM logins): over the days of the window since hire and since tracking began;
--   days since leave: since the last day with leave before the as-of day, else since hire or since
--     leave was first recorded, whichever is later.
WITH starts AS (
    SELECT
        MAX(CASE WHEN metric_name = 'crm_logins' THEN start_d END) AS crm_start,
        MAX(CASE WHEN metric_name = 'pto_days' THEN start_d END) AS pto_start,
        MAX(CASE WHEN metric_name = 'one_on_one' THEN start_d END) AS one_on_one_start,
        MAX(CASE WHEN metric_name = 'training_hours' THEN start_d END) AS training_start,
        MAX(CASE WHEN metric_name = 'peer_sessions' THEN start_d END) AS peer_start
    FROM metric_starts
),
wide AS (
    SELECT
        snap_id,
        MAX(CASE WHEN metric_name = 'crm_logins' THEN sum_28 END) AS crm_28,
        MAX(CASE WHEN metric_name = 'crm_logins' THEN sum_91 END) AS crm_91,
        MAX(CASE WHEN metric_name = 'csat' THEN sum_28 END) AS csat_sum_28,
        MAX(CASE WHEN metric_name = 'csat' THEN n_28 END) AS csat_n_28,
        MAX(CASE WHEN metric_name = 'csat' THEN sum_91 END) AS csat_sum_91,
        MAX(CASE WHEN metric_name = 'csat' THEN n_91 END) AS csat_n_91,
        MAX(CASE WHEN metric_name = 'pulse_score' THEN sum_28 END) AS pulse_sum_28,
        MAX(CASE WHEN metric_name = 'pulse_score' THEN n_28 END) AS pulse_n_28,
        MAX(CASE WHEN metric_name = 'pulse_score' THEN sum_91 END) AS pulse_sum_91,
        MAX(CASE WHEN metric_name = 'pulse_score' THEN n_91 END) AS pulse_n_91,
        MAX(CASE WHEN metric_name = 'after_hours_minutes' THEN sum_28 END) AS ah_sum_28,
        MAX(CASE WHEN metric_name = 'after_hours_minutes' THEN n_28 END) AS ah_n_28,
        MAX(CASE WHEN metric_name = 'after_hours_minutes' THEN sum_91 END) AS ah_sum_91,
        MAX(CASE WHEN metric_name = 'after_hours_minutes' THEN n_91 END) AS ah_n_91,
        MAX(CASE WHEN metric_name = 'pto_days' THEN sum_91 END) AS pto_91,
        MAX(CASE WHEN metric_name = 'one_on_one' THEN sum_28 END) AS one_on_one_28,
        MAX(CASE WHEN metric_name = 'one_on_one' THEN sum_91 END) AS one_on_one_91,
        MAX(CASE WHEN metric_name = 'training_hours' THEN sum_28 END) AS training_28,
        MAX(CASE WHEN metric_name = 'training_hours' THEN sum_91 END) AS training_91,
        MAX(CASE WHEN metric_name = 'peer_sessions' THEN sum_28 END) AS peer_28,
        MAX(CASE WHEN metric_name = 'peer_sessions' THEN sum_91 END) AS peer_91
    FROM engagement_windows
    GROUP BY snap_id
),
rep_first AS (
    -- a rep's first engagement measurement of any metric: before it, the export does not cover them
    SELECT rep_key, MIN(d) AS first_d
    FROM stg_engagement
    WHERE d IS NOT NULL
    GROUP BY rep_key
),
leave AS (
    -- last day with leave before each snapshot: running MAX over leave days and snapshot rows
    SELECT e.rep_key, e.d + 1 AS k, CAST(NULL AS BIGINT) AS snap_id, MAX(e.d) AS last_d
    FROM stg_engagement e
    JOIN stg_metrics m ON m.metric_code = e.metric_code
    WHERE m.metric_name = 'pto_days' AND e.value > 0 AND e.d IS NOT NULL
    GROUP BY e.rep_key, e.d
    UNION ALL
    SELECT rep_key, as_of AS k, snap_id, CAST(NULL AS INTEGER) AS last_d
    FROM stg_snapshots
),
leave_w AS (
    SELECT
        snap_id,
        MAX(last_d) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            AS last_pto_d
    FROM leave
),
x AS (
    SELECT
        s.snap_id,
        s.as_of,
        w.crm_28, w.crm_91,
        w.csat_sum_28, w.csat_n_28, w.csat_sum_91, w.csat_n_91,
        w.pulse_sum_28, w.pulse_n_28, w.pulse_sum_91, w.pulse_n_91,
        w.ah_sum_28, w.ah_n_28, w.ah_sum_91, w.ah_n_91,
        w.pto_91, w.one_on_one_28, w.one_on_one_91, w.training_28, w.training_91, w.peer_28, w.peer_91,
        lw.last_pto_d,
        CASE WHEN rf.first_d < s.as_of THEN 1 ELSE 0 END AS covered,
        st.crm_start, st.pto_start, st.one_on_one_start, st.training_start, st.peer_start,
        s.as_of - GREATEST(r.hire_d, st.crm_start) AS crm_days,
        s.as_of - GREATEST(r.hire_d, st.pto_start) AS pto_days_since_start
    FROM stg_snapshots s
    JOIN leave_w lw ON lw.snap_id = s.snap_id
    LEFT JOIN wide w ON w.snap_id = s.snap_id
    LEFT JOIN stg_reps r ON r.rep_key = s.rep_key
    LEFT JOIN rep_first rf ON rf.rep_key = s.rep_key
    CROSS JOIN starts st
)
SELECT
    snap_id,
    CASE WHEN covered = 1 AND crm_start < as_of AND crm_days > 0
         THEN COALESCE(crm_28, 0) * 7 / LEAST(28, crm_days) END
        AS crm_logins_per_week_28d,
    CASE WHEN covered = 1 AND crm_start < as_of AND crm_days > 0
         THEN COALESCE(crm_91, 0) * 7 / LEAST(91, crm_days) END
        AS crm_logins_per_week_91d,
    CASE WHEN csat_n_28 > 0 THEN csat_sum_28 / csat_n_28 END AS csat_mean_28d,
    CASE WHEN csat_n_91 > 0 THEN csat_sum_91 / csat_n_91 END AS csat_mean_91d,
    CASE WHEN pulse_n_28 > 0 THEN pulse_sum_28 / pulse_n_28 END AS pulse_mean_28d,
    CASE WHEN pulse_n_91 > 0 THEN pulse_sum_91 / pulse_n_91 END AS pulse_mean_91d,
    CASE WHEN pulse_n_28 > 0 AND pulse_n_91 > pulse_n_28
         THEN pulse_sum_28 / pulse_n_28 - (pulse_sum_91 - pulse_sum_28) / (pulse_n_91 - pulse_n_28) END
        AS pulse_trend_28d,
    CASE WHEN ah_n_28 > 0 THEN ah_sum_28 / ah_n_28 END AS after_hours_mean_28d,
    CASE WHEN ah_n_91 > 0 THEN ah_sum_91 / ah_n_91 END AS after_hours_mean_91d,
    CASE WHEN covered = 1 AND pto_start < as_of THEN COALESCE(pto_91, 0) END AS pto_days_91d,
    CASE WHEN covered = 1 AND pto_start < as_of AND last_pto_d IS NOT NULL
         THEN CAST(as_of - last_pto_d AS DOUBLE)
         WHEN covered = 1 AND pto_start < as_of
         THEN CAST(GREATEST(pto_days_since_start, 0) AS DOUBLE) END AS days_since_pto,
    CASE WHEN covered = 1 AND one_on_one_start < as_of THEN COALESCE(one_on_one_28, 0) END AS one_on_ones_28d,
    CASE WHEN covered = 1 AND one_on_one_start < as_of THEN COALESCE(one_on_one_91, 0) END AS one_on_ones_91d,
    CASE WHEN covered = 1 AND training_start < as_of THEN COALESCE(training_28, 0) END AS training_hours_28d,
    CASE WHEN covered = 1 AND training_start < as_of THEN COALESCE(training_91, 0) END AS training_hours_91d,
    CASE WHEN covered = 1 AND peer_start < as_of THEN COALESCE(peer_28, 0) END AS peer_sessions_28d,
    CASE WHEN covered = 1 AND peer_start < as_of THEN COALESCE(peer_91, 0) END AS peer_sessions_91d
FROM x
