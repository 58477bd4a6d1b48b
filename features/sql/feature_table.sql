-- feature_table: snapshot_features, the known engagement features, and peer columns:
-- peer__<feature> = median of the feature over the snapshots of the same segment and as-of day
-- (NULLs ignored), for the features a manager reads side by side with peers.
WITH f AS (
    SELECT sf.*,
        ek.crm_logins_per_week_28d, ek.crm_logins_per_week_91d,
        ek.csat_mean_28d, ek.csat_mean_91d,
        ek.pulse_mean_28d, ek.pulse_mean_91d, ek.pulse_trend_28d,
        ek.after_hours_mean_28d, ek.after_hours_mean_91d,
        ek.pto_days_91d, ek.days_since_pto,
        ek.one_on_ones_28d, ek.one_on_ones_91d,
        ek.training_hours_28d, ek.training_hours_91d,
        ek.peer_sessions_28d, ek.peer_sessions_91d
    FROM snapshot_features sf
    LEFT JOIN engagement_known ek ON ek.snap_id = sf.snap_id
),
peers AS (
    SELECT
        segment_key,
        as_of,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY attainment_to_date) AS peer__attainment_to_date,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY open_pipeline_in_period) AS peer__open_pipeline_in_period,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY pipeline_coverage) AS peer__pipeline_coverage,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY new_deals_91d) AS peer__new_deals_91d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY new_pipeline_amount_91d) AS peer__new_pipeline_amount_91d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY new_deals_per_100_activities_91d) AS peer__new_deals_per_100_activities_91d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY new_deals_per_100_activities_182d) AS peer__new_deals_per_100_activities_182d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY win_rate_180d) AS peer__win_rate_180d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY early_stage_progress_rate_180d) AS peer__early_stage_progress_rate_180d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY stage_progress_rate_364d) AS peer__stage_progress_rate_364d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY avg_won_deal_size_180d) AS peer__avg_won_deal_size_180d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY avg_new_deal_size_182d) AS peer__avg_new_deal_size_182d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY won_cycle_days_180d) AS peer__won_cycle_days_180d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY stage_days_91d) AS peer__stage_days_91d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY overdue_open_deals) AS peer__overdue_open_deals,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY open_deal_stage_age_days) AS peer__open_deal_stage_age_days,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY crm_logins_per_week_28d) AS peer__crm_logins_per_week_28d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY activities_per_week_28d) AS peer__activities_per_week_28d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY meeting_demo_share_28d) AS peer__meeting_demo_share_28d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY csat_mean_91d) AS peer__csat_mean_91d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY late_stage_loss_share_180d) AS peer__late_stage_loss_share_180d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY late_stage_progress_rate_180d) AS peer__late_stage_progress_rate_180d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY pulse_mean_91d) AS peer__pulse_mean_91d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY after_hours_mean_28d) AS peer__after_hours_mean_28d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY pto_days_91d) AS peer__pto_days_91d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY one_on_ones_91d) AS peer__one_on_ones_91d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY training_hours_91d) AS peer__training_hours_91d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY peer_sessions_91d) AS peer__peer_sessions_91d,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY quota_vs_own_history) AS peer__quota_vs_own_history
    FROM f
    GROUP BY segment_key, as_of
)
SELECT
    f.*,
    p.peer__attainment_to_date,
    p.peer__open_pipeline_in_period,
    p.peer__pipeline_coverage,
    p.peer__new_deals_91d,
    p.peer__new_pipeline_amount_91d,
    p.peer__new_deals_per_100_activities_91d,
    p.peer__new_deals_per_100_activities_182d,
    p.peer__win_rate_180d,
    p.peer__early_stage_progress_rate_180d,
    p.peer__stage_progress_rate_364d,
    p.peer__avg_won_deal_size_180d,
    p.peer__avg_new_deal_size_182d,
    p.peer__won_cycle_days_180d,
    p.peer__stage_days_91d,
    p.peer__overdue_open_deals,
    p.peer__open_deal_stage_age_days,
    p.peer__crm_logins_per_week_28d,
    p.peer__activities_per_week_28d,
    p.peer__meeting_demo_share_28d,
    p.peer__csat_mean_91d,
    p.peer__late_stage_loss_share_180d,
    p.peer__late_stage_progress_rate_180d,
    p.peer__pulse_mean_91d,
    p.peer__after_hours_mean_28d,
    p.peer__pto_days_91d,
    p.peer__one_on_ones_91d,
    p.peer__training_hours_91d,
    p.peer__peer_sessions_91d,
    p.peer__quota_vs_own_history
FROM f
LEFT JOIN peers p ON p.segment_key = f.segment_key AND p.as_of = f.as_of
