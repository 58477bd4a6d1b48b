-- engagement_unknown: metrics the contract does not know, long format: per snapshot and metric, the
-- mean of its measurements over the last 28 days (NULL without any). The caller pivots them into
-- one feature per metric.
SELECT
    snap_id,
    metric_name,
    CASE WHEN n_28 > 0 THEN sum_28 / n_28 END AS mean_28d
FROM engagement_windows
WHERE metric_name NOT IN (
    'training_hours', 'one_on_one', 'pulse_score', 'after_hours_minutes',
    'pto_days', 'crm_logins', 'csat', 'peer_sessions'
)
