-- engagement_windows: per snapshot and engagement metric present in the data, long format:
-- sum_28 / sum_91 (sum of the values over the last 28 / 91 days) and, for metrics read as means
-- (csat, pulse, after-hours and any metric the contract does not know), n_28 / n_91 (number of
-- measurements). 1:1s count the days with a value > 0. Same union-and-RANGE-frame technique as
-- deal_windows, partitioned by rep and metric; summed metrics and averaged metrics are separate
-- unions so that each only carries the windows it needs.
WITH metrics AS (
    SELECT
        metric_code,
        metric_name,
        CASE WHEN metric_name IN ('crm_logins', 'pto_days', 'one_on_one', 'training_hours', 'peer_sessions')
             THEN 1 ELSE 0 END AS is_summed
    FROM stg_metrics
),
per_day AS (
    SELECT
        e.rep_key,
        e.metric_code,
        e.d + 1 AS k,
        m.is_summed,
        CAST(SUM(CASE WHEN m.metric_name = 'one_on_one' THEN (CASE WHEN e.value > 0 THEN 1 ELSE 0 END)
                      ELSE e.value END) AS DOUBLE) AS v_sum,
        CAST(COUNT(e.value) AS DOUBLE) AS v_n
    FROM stg_engagement e
    JOIN metrics m ON m.metric_code = e.metric_code
    WHERE e.d IS NOT NULL AND e.value IS NOT NULL
    GROUP BY e.rep_key, e.metric_code, e.d + 1, m.is_summed
),
summed AS (
    SELECT rep_key, metric_code, k, CAST(NULL AS BIGINT) AS snap_id, v_sum
    FROM per_day
    WHERE is_summed = 1
    UNION ALL
    SELECT s.rep_key, m.metric_code, s.as_of AS k, s.snap_id, 0
    FROM stg_snapshots s
    CROSS JOIN (SELECT DISTINCT metric_code FROM per_day WHERE is_summed = 1) m
),
summed_w AS (
    SELECT
        snap_id,
        metric_code,
        SUM(v_sum) OVER (PARTITION BY rep_key, metric_code ORDER BY k RANGE BETWEEN 27 PRECEDING AND CURRENT ROW)
            AS sum_28,
        SUM(v_sum) OVER (PARTITION BY rep_key, metric_code ORDER BY k RANGE BETWEEN 90 PRECEDING AND CURRENT ROW)
            AS sum_91
    FROM summed
),
averaged AS (
    SELECT rep_key, metric_code, k, CAST(NULL AS BIGINT) AS snap_id, v_sum, v_n
    FROM per_day
    WHERE is_summed = 0
    UNION ALL
    SELECT s.rep_key, m.metric_code, s.as_of AS k, s.snap_id, 0, 0
    FROM stg_snapshots s
    CROSS JOIN (SELECT DISTINCT metric_code FROM per_day WHERE is_summed = 0) m
),
averaged_w AS (
    SELECT
        snap_id,
        metric_code,
        SUM(v_sum) OVER (PARTITION BY rep_key, metric_code ORDER BY k RANGE BETWEEN 27 PRECEDING AND CURRENT ROW)
            AS sum_28,
        SUM(v_n) OVER (PARTITION BY rep_key, metric_code ORDER BY k RANGE BETWEEN 27 PRECEDING AND CURRENT ROW)
            AS n_28,
        SUM(v_sum) OVER (PARTITION BY rep_key, metric_code ORDER BY k RANGE BETWEEN 90 PRECEDING AND CURRENT ROW)
            AS sum_91,
        SUM(v_n) OVER (PARTITION BY rep_key, metric_code ORDER BY k RANGE BETWEEN 90 PRECEDING AND CURRENT ROW)
            AS n_91
    FROM averaged
),
both_w AS (
    SELECT snap_id, metric_code, sum_28, CAST(NULL AS DOUBLE) AS n_28, sum_91, CAST(NULL AS DOUBLE) AS n_91
    FROM summed_w
    WHERE snap_id IS NOT NULL
    UNION ALL
    SELECT snap_id, metric_code, sum_28, n_28, sum_91, n_91
    FROM averaged_w
    WHERE snap_id IS NOT NULL
)
SELECT b.snap_id, m.metric_name, b.sum_28, b.n_28, b.sum_91, b.n_91
FROM both_w b
JOIN metrics m ON m.metric_code = b.metric_code
