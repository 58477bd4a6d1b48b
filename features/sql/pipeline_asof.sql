-- pipeline_asof: per snapshot, the rep's deals on the as-of day, by delta encoding: every
-- deal_states interval adds its amount at k = valid_from and removes it at k = valid_to, so a
-- running sum up to k = as_of is the state on that day (no snapshot x deal join).
--   period level (the snapshot's quota period): open deals whose expected close falls in the
--     period (amount, count) and won deals whose close date falls in it (won amount to date);
--   rep level: all open deals, and those whose expected close date is already past (overdue from
--     close_d + 1 on).
-- Amounts in whole cents as DOUBLE: adding and removing them is exact.
WITH quotas AS (
    SELECT DISTINCT rep_key, ps, pe FROM stg_quotas
),
period_iv AS (
    SELECT
        s.rep_key,
        q.ps,
        s.valid_from,
        s.valid_to,
        CASE WHEN s.is_closed = 0 THEN ROUND(s.amount * 100) ELSE 0 END AS open_amt,
        CASE WHEN s.is_closed = 0 THEN 1 ELSE 0 END AS open_n,
        CASE WHEN s.is_won = 1 THEN ROUND(s.amount * 100) ELSE 0 END AS won_amt
    FROM deal_states s
    JOIN quotas q ON q.rep_key = s.rep_key AND s.close_d >= q.ps AND s.close_d <= q.pe
    WHERE s.is_closed = 0 OR s.is_won = 1
),
period_u AS (
    SELECT rep_key, ps, k, CAST(NULL AS BIGINT) AS snap_id,
           CAST(SUM(open_amt) AS DOUBLE) AS open_amt, CAST(SUM(open_n) AS DOUBLE) AS open_n,
           CAST(SUM(won_amt) AS DOUBLE) AS won_amt
    FROM (
        SELECT rep_key, ps, valid_from AS k, open_amt, open_n, won_amt FROM period_iv
        UNION ALL
        SELECT rep_key, ps, valid_to AS k, -open_amt, -open_n, -won_amt FROM period_iv WHERE valid_to IS NOT NULL
    ) d
    GROUP BY rep_key, ps, k
    UNION ALL
    SELECT rep_key, ps, as_of AS k, snap_id, 0, 0, 0
    FROM stg_snapshots
),
period_cum AS (
    SELECT
        snap_id,
        SUM(open_amt) OVER (PARTITION BY rep_key, ps ORDER BY k RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            AS open_in_period_amt,
        SUM(open_n) OVER (PARTITION BY rep_key, ps ORDER BY k RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            AS open_in_period_n,
        SUM(won_amt) OVER (PARTITION BY rep_key, ps ORDER BY k RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            AS won_to_date_amt
    FROM period_u
),
open_iv AS (
    SELECT rep_key, valid_from, valid_to, close_d, ROUND(amount * 100) AS cents
    FROM deal_states
    WHERE is_closed = 0
),
overdue_iv AS (
    SELECT rep_key, GREATEST(valid_from, close_d + 1) AS valid_from, valid_to, cents
    FROM open_iv
    WHERE close_d IS NOT NULL AND (valid_to IS NULL OR close_d + 1 < valid_to)
),
rep_u AS (
    SELECT rep_key, k, CAST(NULL AS BIGINT) AS snap_id,
           CAST(SUM(open_amt) AS DOUBLE) AS open_amt, CAST(SUM(overdue_amt) AS DOUBLE) AS overdue_amt,
           CAST(SUM(overdue_n) AS DOUBLE) AS overdue_n
    FROM (
        SELECT rep_key, valid_from AS k, cents AS open_amt, 0 AS overdue_amt, 0 AS overdue_n FROM open_iv
        UNION ALL
        SELECT rep_key, valid_to, -cents, 0, 0 FROM open_iv WHERE valid_to IS NOT NULL
        UNION ALL
        SELECT rep_key, valid_from, 0, cents, 1 FROM overdue_iv
        UNION ALL
        SELECT rep_key, valid_to, 0, -cents, -1 FROM overdue_iv WHERE valid_to IS NOT NULL
    ) d
    GROUP BY rep_key, k
    UNION ALL
    SELECT rep_key, as_of AS k, snap_id, 0, 0, 0
    FROM stg_snapshots
),
rep_cum AS (
    SELECT
        snap_id,
        SUM(open_amt) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            AS open_total_amt,
        SUM(overdue_amt) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            AS overdue_amt,
        SUM(overdue_n) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            AS overdue_n
    FROM rep_u
)
SELECT p.snap_id, p.open_in_period_amt, p.open_in_period_n, p.won_to_date_amt,
       r.open_total_amt, r.overdue_amt, r.overdue_n
FROM period_cum p
JOIN rep_cum r ON r.snap_id = p.snap_id
WHERE p.snap_id IS NOT NULL
