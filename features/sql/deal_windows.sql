-- deal_windows: trailing-window sums of deal_events for every snapshot.
-- Technique (used by every *_windows step): snapshot rows are put among the event rows at
-- k = as_of; a RANGE frame of W - 1 PRECEDING .. CURRENT ROW then covers the events of days
-- as_of - W .. as_of - 1, i.e. the last W days. Each kind of event gets its own union so that
-- window work is proportional to its rows. Names end in the window length in days.
WITH created AS (
    SELECT rep_key, k, CAST(NULL AS BIGINT) AS snap_id, n_new, amt_new
    FROM deal_events
    WHERE n_new > 0
    UNION ALL
    SELECT rep_key, as_of AS k, snap_id, 0, 0
    FROM stg_snapshots
),
created_w AS (
    SELECT
        snap_id,
        SUM(n_new) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 27 PRECEDING AND CURRENT ROW) AS n_new_28,
        SUM(n_new) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 90 PRECEDING AND CURRENT ROW) AS n_new_91,
        SUM(amt_new) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 27 PRECEDING AND CURRENT ROW) AS amt_new_28,
        SUM(amt_new) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 90 PRECEDING AND CURRENT ROW) AS amt_new_91,
        SUM(n_new) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 181 PRECEDING AND CURRENT ROW) AS n_new_182,
        SUM(amt_new) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 181 PRECEDING AND CURRENT ROW) AS amt_new_182
    FROM created
),
closed AS (
    SELECT rep_key, k, CAST(NULL AS BIGINT) AS snap_id, n_won, n_lost, amt_won, cycle_won, n_lost_late, n_lost_known
    FROM deal_events
    WHERE n_won > 0 OR n_lost > 0
    UNION ALL
    SELECT rep_key, as_of AS k, snap_id, 0, 0, 0, 0, 0, 0
    FROM stg_snapshots
),
closed_w AS (
    SELECT
        snap_id,
        SUM(n_won) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 179 PRECEDING AND CURRENT ROW) AS n_won_180,
        SUM(n_lost) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 179 PRECEDING AND CURRENT ROW) AS n_lost_180,
        SUM(amt_won) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 179 PRECEDING AND CURRENT ROW)
            AS amt_won_180,
        SUM(cycle_won) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 179 PRECEDING AND CURRENT ROW)
            AS cycle_won_180,
        SUM(n_lost_late) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 179 PRECEDING AND CURRENT ROW)
            AS n_lost_late_180,
        SUM(n_lost_known) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 179 PRECEDING AND CURRENT ROW)
            AS n_lost_known_180
    FROM closed
),
slips AS (
    SELECT rep_key, k, CAST(NULL AS BIGINT) AS snap_id, n_slip
    FROM deal_events
    WHERE n_slip > 0
    UNION ALL
    SELECT rep_key, as_of AS k, snap_id, 0
    FROM stg_snapshots
),
slips_w AS (
    SELECT
        snap_id,
        SUM(n_slip) OVER (PARTITION BY rep_key ORDER BY k RANGE BETWEEN 90 PRECEDING AND CURRENT ROW) AS n_slip_91
    FROM slips
)
SELECT
    c.snap_id,
    c.n_new_28, c.n_new_91, c.amt_new_28, c.amt_new_91, c.n_new_182, c.amt_new_182,
    w.n_won_180, w.n_lost_180, w.amt_won_180, w.cycle_won_180, w.n_lost_late_180, w.n_lost_known_180,
    s.n_slip_91
FROM created_w c
JOIN closed_w w ON w.snap_id = c.snap_id
JOIN slips_w s ON s.snap_id = c.snap_id
WHERE c.snap_id IS NOT NULL
