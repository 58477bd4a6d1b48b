-- activity_windows: activities by type over the last 7 / 28 / 56 / 91 days (all types: 182 too) of every snapshot
-- (same union-and-RANGE-frame technique as deal_windows). An activity counts on its UTC day.
-- Only activities from the hire_date on count: the rates divide by the days since the hire, and a
-- re-hired rep's hire_date is the latest hire (their first stint's activities are not of these days).
WITH per_type AS (
    SELECT a.rep_key, a.d, a.type_code, COUNT(*) AS n
    FROM stg_activities a
    LEFT JOIN stg_reps r ON r.rep_key = a.rep_key
    WHERE a.d IS NOT NULL AND (r.hire_d IS NULL OR a.d >= r.hire_d)
    GROUP BY a.rep_key, a.d, a.type_code
),
per_day AS (
    SELECT
        p.rep_key,
        p.d + 1 AS k,
        CAST(SUM(p.n) AS DOUBLE) AS n_act,
        CAST(SUM(CASE WHEN LOWER(TRIM(t.type_name)) = 'call' THEN p.n ELSE 0 END) AS DOUBLE) AS n_call,
        CAST(SUM(CASE WHEN LOWER(TRIM(t.type_name)) = 'email' THEN p.n ELSE 0 END) AS DOUBLE) AS n_email,
        CAST(SUM(CASE WHEN LOWER(TRIM(t.type_name)) = 'meeting' THEN p.n ELSE 0 END) AS DOUBLE) AS n_meeting,
        CAST(SUM(CASE WHEN LOWER(TRIM(t.type_name)) = 'demo' THEN p.n ELSE 0 END) AS DOUBLE) AS n_demo
    FROM per_type p
    JOIN stg_activity_types t ON t.type_code = p.type_code
    GROUP BY p.rep_key, p.d
),
u AS (
    SELECT rep_key, k, CAST(NULL AS BIGINT) AS snap_id, n_act, n_call, n_email, n_meeting, n_demo
    FROM per_day
    UNION ALL
    SELECT rep_key, as_of AS k, snap_id, 0, 0, 0, 0, 0
    FROM stg_snapshots
),
w AS (
    SELECT
        snap_id,
        SUM(n_act) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 6 PRECEDING AND CURRENT ROW) AS n_act_7,
        SUM(n_act) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 27 PRECEDING AND CURRENT ROW) AS n_act_28,
        SUM(n_act) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 55 PRECEDING AND CURRENT ROW) AS n_act_56,
        SUM(n_act) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 90 PRECEDING AND CURRENT ROW) AS n_act_91,
        SUM(n_act) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 181 PRECEDING AND CURRENT ROW) AS n_act_182,
        SUM(n_call) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 27 PRECEDING AND CURRENT ROW) AS n_call_28,
        SUM(n_call) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 90 PRECEDING AND CURRENT ROW) AS n_call_91,
        SUM(n_email) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 27 PRECEDING AND CURRENT ROW) AS n_email_28,
        SUM(n_email) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 90 PRECEDING AND CURRENT ROW) AS n_email_91,
        SUM(n_meeting) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 27 PRECEDING AND CURRENT ROW)
            AS n_meeting_28,
        SUM(n_meeting) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 90 PRECEDING AND CURRENT ROW)
            AS n_meeting_91,
        SUM(n_demo) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 27 PRECEDING AND CURRENT ROW) AS n_demo_28,
        SUM(n_demo) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 90 PRECEDING AND CURRENT ROW) AS n_demo_91
    FROM u
)
SELECT *
FROM w
WHERE snap_id IS NOT NULL
