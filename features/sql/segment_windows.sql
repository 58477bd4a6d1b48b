-- segment_windows: deals won by all reps of a segment over the 180 days before each as-of day
-- (count and amount in cents), for comparing a rep's won deal size with the segment's.
WITH seg_ev AS (
    SELECT COALESCE(r.segment, '') AS segment_key, e.k, e.n_won, e.amt_won
    FROM deal_events e
    JOIN stg_reps r ON r.rep_key = e.rep_key
    WHERE e.n_won > 0
),
seg_keys AS (
    SELECT DISTINCT COALESCE(r.segment, '') AS segment_key, s.as_of
    FROM stg_snapshots s
    JOIN stg_reps r ON r.rep_key = s.rep_key
),
u AS (
    SELECT segment_key, k, 0 AS is_key, n_won, amt_won FROM seg_ev
    UNION ALL
    SELECT segment_key, as_of AS k, 1 AS is_key, CAST(0 AS DOUBLE) AS n_won, CAST(0 AS DOUBLE) AS amt_won
    FROM seg_keys
),
w AS (
    SELECT
        segment_key,
        k,
        is_key,
        SUM(n_won) OVER (PARTITION BY segment_key ORDER BY k RANGE BETWEEN 179 PRECEDING AND CURRENT ROW)
            AS seg_won_n_180,
        SUM(amt_won) OVER (PARTITION BY segment_key ORDER BY k RANGE BETWEEN 179 PRECEDING AND CURRENT ROW)
            AS seg_won_amt_180
    FROM u
)
SELECT segment_key, k AS as_of, seg_won_n_180, seg_won_amt_180
FROM w
WHERE is_key = 1
