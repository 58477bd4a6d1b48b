-- labels: the outcome of each snapshot's period, per the contract: attainment = amount of won
-- deals (final state in `opportunities`) with close_date in the period / quota; missed when
-- attainment < miss_threshold. NULL while the period is not finished (period_end >= reference_day).
WITH periods AS (
    SELECT DISTINCT rep_key, ps, pe FROM stg_snapshots
),
won AS (
    SELECT p.rep_key, p.ps, p.pe, SUM(o.amount) AS won_amount
    FROM periods p
    JOIN stg_opps o ON o.rep_key = p.rep_key AND o.is_won AND o.close_d >= p.ps AND o.close_d <= p.pe
    GROUP BY p.rep_key, p.ps, p.pe
),
quotas AS (
    SELECT rep_key, ps, pe, MAX(quota_amount) AS quota_amount
    FROM stg_quotas
    GROUP BY rep_key, ps, pe
),
att AS (
    SELECT
        s.snap_id,
        CASE WHEN par.reference_day IS NOT NULL AND s.pe < par.reference_day AND q.quota_amount > 0
             THEN COALESCE(w.won_amount, CAST(0 AS DOUBLE)) / q.quota_amount END AS attainment,
        par.miss_threshold
    FROM stg_snapshots s
    CROSS JOIN stg_params par
    LEFT JOIN quotas q ON q.rep_key = s.rep_key AND q.ps = s.ps AND q.pe = s.pe
    LEFT JOIN won w ON w.rep_key = s.rep_key AND w.ps = s.ps AND w.pe = s.pe
)
SELECT
    snap_id,
    attainment,
    CASE WHEN attainment IS NULL THEN NULL WHEN attainment < miss_threshold THEN 1 ELSE 0 END AS missed
FROM att
