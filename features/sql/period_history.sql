-- period_history: the rep's results in earlier quota periods, per (rep, period) of the snapshots.
-- A period's result is its won amount (deals won with a close date in the period) according to the
-- deal states of the day after it ended (valid_from <= pe + 1 < valid_to), over its quota: what
-- was known when it ended, so later corrections do not leak back. A snapshot sees only the periods
-- that ended before its own period began (so before its as-of day).
WITH quotas AS (
    SELECT rep_key, ps, pe, MAX(quota_amount) AS quota_amount
    FROM stg_quotas
    GROUP BY rep_key, ps, pe
),
won AS (
    SELECT q.rep_key, q.ps, q.pe, CAST(SUM(ROUND(s.amount * 100)) AS DOUBLE) AS won_cents
    FROM deal_states s
    JOIN quotas q ON q.rep_key = s.rep_key AND s.close_d >= q.ps AND s.close_d <= q.pe
    WHERE s.is_won = 1 AND s.valid_from <= q.pe + 1 AND (s.valid_to IS NULL OR s.valid_to > q.pe + 1)
    GROUP BY q.rep_key, q.ps, q.pe
),
results AS (
    SELECT q.rep_key, q.ps, q.pe, COALESCE(w.won_cents, CAST(0 AS DOUBLE)) / 100 / q.quota_amount AS att
    FROM quotas q
    LEFT JOIN won w ON w.rep_key = q.rep_key AND w.ps = q.ps AND w.pe = q.pe
    WHERE q.quota_amount > 0
),
earlier AS (
    SELECT
        p.rep_key,
        p.ps,
        r.att,
        ROW_NUMBER() OVER (PARTITION BY p.rep_key, p.ps ORDER BY r.pe DESC, r.ps DESC) AS back
    FROM (SELECT DISTINCT rep_key, ps FROM stg_snapshots) p
    JOIN results r ON r.rep_key = p.rep_key AND r.pe < p.ps
)
SELECT
    rep_key,
    ps,
    MAX(CASE WHEN back = 1 THEN att END) AS prev_att,
    AVG(CASE WHEN back <= 4 THEN att END) AS att_mean_4,
    CAST(SUM(CASE WHEN back <= 4 THEN 1 ELSE 0 END) AS DOUBLE) AS n_prev
FROM earlier
GROUP BY rep_key, ps
