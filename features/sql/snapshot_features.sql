-- snapshot_features: every fixed feature of the registry, one row per snapshot, named as in
-- features/registry.py. Inputs are the partial tables above; all day arithmetic is on integers.
-- Missing stays NULL: an absent table gives NULL features, never 0; counts of a present table are 0.
WITH bounds AS (
    SELECT
        MIN(CASE WHEN src = 1 THEN d END) AS act_start,
        MIN(d) AS data_start
    FROM (
        SELECT 1 AS src, MIN(d) AS d FROM stg_activities
        UNION ALL
        SELECT 2 AS src, MIN(created_d) AS d FROM stg_opps
        UNION ALL
        SELECT 3 AS src, MIN(changed_d) AS d FROM stg_history
        UNION ALL
        SELECT 4 AS src, MIN(d) AS d FROM stg_engagement
    ) starts
),
base AS (
    SELECT
        s.snap_id,
        s.rep_key,
        s.ps,
        s.pe,
        s.as_of,
        COALESCE(r.segment, '') AS segment_key,
        r.hire_d,
        CAST(s.pe - s.ps + 1 AS DOUBLE) AS period_days,
        qc.quota_amount,
        qc.quota_vs_own_history,
        qc.quota_vs_segment,
        c.quarter_of_year,
        par.has_history,
        par.has_activities,
        b.data_start,
        CASE WHEN b.act_start IS NULL THEN NULL ELSE s.as_of - GREATEST(r.hire_d, b.act_start) END AS act_days,
        pa.won_to_date_amt / 100 AS won_to_date,
        pa.open_in_period_amt / 100 AS open_in_period,
        pa.open_in_period_n,
        pa.open_total_amt / 100 AS open_total,
        pa.overdue_amt / 100 AS overdue_amt,
        pa.overdue_n,
        aw.n_act_7 AS act_7, aw.n_act_28 AS act_28, aw.n_act_56 AS act_56, aw.n_act_91 AS act_91,
        aw.n_act_182 AS act_182, dw.n_new_182 AS new_n_182, dw.amt_new_182 / 100 AS new_amt_182,
        aw.n_call_28 AS call_28, aw.n_call_91 AS call_91, aw.n_email_28 AS email_28, aw.n_email_91 AS email_91,
        aw.n_meeting_28 AS meeting_28, aw.n_meeting_91 AS meeting_91, aw.n_demo_28 AS demo_28,
        aw.n_demo_91 AS demo_91,
        dw.n_new_28 AS new_n_28, dw.n_new_91 AS new_n_91,
        dw.amt_new_28 / 100 AS new_amt_28,
        dw.amt_new_91 / 100 AS new_amt_91,
        dw.n_won_180 AS won_n_180, dw.n_lost_180 AS lost_n_180,
        dw.amt_won_180 / 100 AS won_amt_180,
        dw.cycle_won_180, dw.n_lost_late_180 AS lost_late_180, dw.n_lost_known_180 AS lost_known_180,
        dw.n_slip_91 AS slips_91,
        sw.seg_won_n_180,
        sw.seg_won_amt_180 / 100 AS seg_won_amt_180,
        stw.n_exit_early_180, stw.n_on_early_180, stw.n_exit_late_180, stw.n_on_late_180,
        stw.n_exit_91, stw.run_days_91, stw.n_open_staged, stw.open_run_start_sum, stw.n_exit_364, stw.n_on_364,
        ph.prev_att, ph.att_mean_4
    FROM stg_snapshots s
    CROSS JOIN stg_params par
    CROSS JOIN bounds b
    LEFT JOIN stg_reps r ON r.rep_key = s.rep_key
    LEFT JOIN quota_context qc ON qc.snap_id = s.snap_id
    LEFT JOIN stg_calendar c ON c.d = s.ps
    LEFT JOIN pipeline_asof pa ON pa.snap_id = s.snap_id
    LEFT JOIN deal_windows dw ON dw.snap_id = s.snap_id
    LEFT JOIN activity_windows aw ON aw.snap_id = s.snap_id
    LEFT JOIN segment_windows sw ON sw.segment_key = COALESCE(r.segment, '') AND sw.as_of = s.as_of
    LEFT JOIN stage_windows stw ON stw.snap_id = s.snap_id
    LEFT JOIN period_history ph ON ph.rep_key = s.rep_key AND ph.ps = s.ps
),
rates AS (
    -- activity exposure: days of each window since hire and since the first activity in the data
    SELECT
        base.*,
        CASE WHEN has_activities = 1 AND act_days > 0 THEN LEAST(7, act_days) END AS exp_7,
        CASE WHEN has_activities = 1 AND act_days > 0 THEN LEAST(28, act_days) END AS exp_28,
        CASE WHEN has_activities = 1 AND act_days > 0 THEN LEAST(56, act_days) END AS exp_56,
        CASE WHEN has_activities = 1 AND act_days > 0 THEN LEAST(91, act_days) END AS exp_91,
        CASE WHEN quota_amount > 0 THEN won_to_date / quota_amount END AS attainment
    FROM base
)
SELECT
    snap_id,
    segment_key,
    as_of,
    -- attainment and pace
    attainment AS attainment_to_date,
    attainment - CAST(as_of - ps AS DOUBLE) / period_days AS pace_gap,
    prev_att AS prev_period_attainment,
    att_mean_4 AS attainment_mean_4p,
    -- calendar
    CAST(as_of - ps AS DOUBLE) / period_days AS elapsed_share,
    CAST(quarter_of_year AS DOUBLE) AS quarter_of_year,
    -- pipeline
    open_in_period AS open_pipeline_in_period,
    CAST(open_in_period_n AS DOUBLE) AS open_deals_in_period,
    CASE WHEN quota_amount - won_to_date > 0 THEN open_in_period / (quota_amount - won_to_date) END
        AS pipeline_coverage,
    open_total AS open_pipeline_total,
    CAST(new_n_28 AS DOUBLE) AS new_deals_28d,
    CAST(new_n_91 AS DOUBLE) AS new_deals_91d,
    new_amt_28 AS new_pipeline_amount_28d,
    new_amt_91 AS new_pipeline_amount_91d,
    CASE WHEN exp_91 IS NOT NULL AND act_91 > 0 THEN 100 * CAST(new_n_91 AS DOUBLE) / act_91 END
        AS new_deals_per_100_activities_91d,
    CASE WHEN exp_91 IS NOT NULL AND act_182 > 0 THEN 100 * CAST(new_n_182 AS DOUBLE) / act_182 END
        AS new_deals_per_100_activities_182d,
    -- conversion
    CASE WHEN won_n_180 + lost_n_180 > 0 THEN CAST(won_n_180 AS DOUBLE) / (won_n_180 + lost_n_180) END
        AS win_rate_180d,
    CAST(won_n_180 + lost_n_180 AS DOUBLE) AS closed_deals_180d,
    CASE WHEN won_n_180 + lost_n_180 > 0 AND lost_known_180 = lost_n_180
         THEN CAST(won_n_180 + lost_late_180 AS DOUBLE) / (won_n_180 + lost_n_180) END
        AS late_stage_reach_rate_180d,
    CASE WHEN has_history = 1 AND n_exit_early_180 > 0 THEN n_on_early_180 / n_exit_early_180 END
        AS early_stage_progress_rate_180d,
    CASE WHEN has_history = 1 AND n_exit_364 > 0 THEN n_on_364 / n_exit_364 END AS stage_progress_rate_364d,
    -- deal size
    CASE WHEN won_n_180 > 0 THEN won_amt_180 / won_n_180 END AS avg_won_deal_size_180d,
    CASE WHEN new_n_182 > 0 THEN new_amt_182 / new_n_182 END AS avg_new_deal_size_182d,
    CASE WHEN won_n_180 > 0 AND seg_won_n_180 > 0 AND seg_won_amt_180 > 0
         THEN (won_amt_180 / won_n_180) / (seg_won_amt_180 / seg_won_n_180) END AS won_deal_size_vs_segment,
    -- cycle
    CASE WHEN won_n_180 > 0 THEN CAST(cycle_won_180 AS DOUBLE) / won_n_180 END AS won_cycle_days_180d,
    CASE WHEN has_history = 1 THEN CAST(slips_91 AS DOUBLE) END AS close_date_slips_91d,
    CASE WHEN has_history = 1 AND n_exit_91 > 0 THEN run_days_91 / n_exit_91 END AS stage_days_91d,
    -- a run starting on valid_from began on the day before: days since the stage change
    CASE WHEN has_history = 1 AND n_open_staged > 0 THEN as_of + 1 - open_run_start_sum / n_open_staged END
        AS open_deal_stage_age_days,
    -- CRM hygiene
    CAST(overdue_n AS DOUBLE) AS overdue_open_deals,
    CASE WHEN open_total > 0 THEN overdue_amt / open_total END AS overdue_open_share,
    -- activity
    CAST(act_7 AS DOUBLE) * 7 / exp_7 AS activities_per_week_7d,
    CAST(act_28 AS DOUBLE) * 7 / exp_28 AS activities_per_week_28d,
    CAST(act_91 AS DOUBLE) * 7 / exp_91 AS activities_per_week_91d,
    CAST(call_28 AS DOUBLE) * 7 / exp_28 AS calls_per_week_28d,
    CAST(call_91 AS DOUBLE) * 7 / exp_91 AS calls_per_week_91d,
    CAST(email_28 AS DOUBLE) * 7 / exp_28 AS emails_per_week_28d,
    CAST(email_91 AS DOUBLE) * 7 / exp_91 AS emails_per_week_91d,
    CAST(meeting_28 AS DOUBLE) * 7 / exp_28 AS meetings_per_week_28d,
    CAST(meeting_91 AS DOUBLE) * 7 / exp_91 AS meetings_per_week_91d,
    CAST(demo_28 AS DOUBLE) * 7 / exp_28 AS demos_per_week_28d,
    CAST(demo_91 AS DOUBLE) * 7 / exp_91 AS demos_per_week_91d,
    CASE WHEN exp_56 > exp_28 AND act_56 - act_28 > 0
         THEN (CAST(act_28 AS DOUBLE) / exp_28) / (CAST(act_56 - act_28 AS DOUBLE) / (exp_56 - exp_28)) END
        AS activity_trend_28d,
    CASE WHEN exp_28 IS NOT NULL AND act_28 > 0 THEN CAST(meeting_28 + demo_28 AS DOUBLE) / act_28 END
        AS meeting_demo_share_28d,
    -- customer
    CASE WHEN lost_known_180 > 0 THEN CAST(lost_late_180 AS DOUBLE) / lost_known_180 END
        AS late_stage_loss_share_180d,
    CASE WHEN has_history = 1 AND n_exit_late_180 > 0 THEN n_on_late_180 / n_exit_late_180 END
        AS late_stage_progress_rate_180d,
    -- quota
    CAST(quota_amount AS DOUBLE) AS quota_amount,
    CAST(quota_vs_own_history AS DOUBLE) AS quota_vs_own_history,
    CAST(quota_vs_segment AS DOUBLE) AS quota_vs_segment,
    -- tenure
    CAST(as_of - hire_d AS DOUBLE) AS tenure_days,
    CASE WHEN data_start IS NULL THEN CAST(0 AS DOUBLE)
         ELSE CAST(GREATEST(0, as_of - GREATEST(hire_d, data_start)) AS DOUBLE) END AS history_days
FROM rates
