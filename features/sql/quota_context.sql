-- quota_context: per snapshot, its quota, the mean of the rep's earlier quotas (periods starting
-- before this one) and the median quota of the segment's reps hired by the as-of day for the
-- same period, and the quota over each (the features quota_vs_own_history, quota_vs_segment; the
-- fairness audit's outcomes read them here too).
-- The own-history ratio compares quotas per month of their period (days / 30.4375, rounded, at
-- least 1), so a rep moving from quarterly to monthly quotas keeps the same target ratio; calendar
-- quarters of 90 to 92 days are all 3 months, so equal quarterly quotas stay a ratio of 1. An earlier
-- quota of as many months as this period is taken as it is (no rescaling, so no rounding either).
WITH quotas AS (
    SELECT rep_key, ps, pe, MAX(quota_amount) AS quota_amount,
           GREATEST(1, FLOOR((pe - ps + 1) / 30.4375 + 0.5)) AS months
    FROM stg_quotas
    GROUP BY rep_key, ps, pe
),
cur AS (
    SELECT
        s.snap_id, s.rep_key, s.ps, s.pe, s.as_of,
        COALESCE(r.segment, '') AS segment_key,
        q.quota_amount
    FROM stg_snapshots s
    LEFT JOIN stg_reps r ON r.rep_key = s.rep_key
    LEFT JOIN quotas q ON q.rep_key = s.rep_key AND q.ps = s.ps AND q.pe = s.pe
),
own AS (
    -- each earlier quota scaled to this period's months
    SELECT
        p.rep_key, p.ps,
        AVG(CASE WHEN q.months = p.months THEN q.quota_amount
                 ELSE q.quota_amount * p.months / q.months END) AS own_mean
    FROM (
        SELECT rep_key, ps, GREATEST(1, FLOOR((pe - ps + 1) / 30.4375 + 0.5)) AS months
        FROM (SELECT DISTINCT rep_key, ps, pe FROM stg_snapshots) sp
    ) p
    JOIN quotas q ON q.rep_key = p.rep_key AND q.ps < p.ps
    GROUP BY p.rep_key, p.ps
),
seg_keys AS (
    SELECT DISTINCT segment_key, ps, pe, as_of FROM cur
),
seg AS (
    SELECT
        k.segment_key, k.ps, k.pe, k.as_of,
        PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY q.quota_amount) AS seg_median
    FROM seg_keys k
    JOIN stg_reps r ON COALESCE(r.segment, '') = k.segment_key AND r.hire_d <= k.as_of
    JOIN quotas q ON q.rep_key = r.rep_key AND q.ps = k.ps AND q.pe = k.pe
    GROUP BY k.segment_key, k.ps, k.pe, k.as_of
)
SELECT
    cur.snap_id,
    cur.quota_amount,
    CASE WHEN own.own_mean > 0 THEN cur.quota_amount / own.own_mean END AS quota_vs_own_history,
    CASE WHEN seg.seg_median > 0 THEN cur.quota_amount / CAST(seg.seg_median AS DOUBLE) END AS quota_vs_segment
FROM cur
LEFT JOIN own ON own.rep_key = cur.rep_key AND own.ps = cur.ps
LEFT JOIN seg ON seg.segment_key = cur.segment_key AND seg.ps = cur.ps AND seg.pe = cur.pe
    AND seg.as_of = cur.as_of
