-- deal_events: per rep and as-of day k, the deal events that became known on k (they happened
-- on day k - 1): deals created (count; amount at creation, in whole cents), deals won or lost
-- (the first close after being open) with their amount and cycle time (created -> close date),
-- whether a lost deal had reached a late stage before (NULL when its stages are unknown), and
-- pushes of an open deal's expected close date to a later day. Counts and cents are DOUBLEs so
-- that window sums stay exact and fast. A deal created before its owner's hire_date was handed over
-- (CRMs name a leaver's successor as owner from the start): it is the owner's pipeline, win or loss,
-- but not a deal they created.
WITH late AS (
    SELECT
        opp_key,
        MIN(CASE WHEN is_closed = 0 AND is_late = 1 THEN valid_from END) AS first_late_from,
        MAX(CASE WHEN is_closed = 0 AND is_late IS NOT NULL THEN 1 ELSE 0 END) AS stage_known
    FROM deal_states
    GROUP BY opp_key
),
ev AS (
    SELECT
        s.opp_key,
        s.rep_key,
        s.valid_from AS k,
        ROUND(s.amount * 100) AS cents,
        GREATEST(s.close_d - s.created_d, 0) AS cycle_days,
        s.is_won,
        CASE WHEN s.prev_closed IS NULL AND (r.hire_d IS NULL OR s.created_d >= r.hire_d) THEN 1 ELSE 0 END
            AS is_new,
        CASE WHEN s.is_closed = 1 AND COALESCE(s.prev_closed, 0) = 0 THEN 1 ELSE 0 END AS is_close,
        CASE WHEN s.is_closed = 0 AND s.prev_closed = 0 AND s.close_d > s.prev_close_d THEN 1 ELSE 0 END AS is_slip
    FROM deal_states s
    LEFT JOIN stg_reps r ON r.rep_key = s.rep_key
    WHERE s.prev_closed IS NULL
       OR (s.is_closed = 1 AND s.prev_closed = 0)
       OR (s.is_closed = 0 AND s.prev_closed = 0 AND s.close_d > s.prev_close_d)
),
flagged AS (
    SELECT
        ev.*,
        CASE WHEN l.stage_known = 0 THEN NULL
             WHEN l.first_late_from < ev.k THEN 1
             ELSE 0 END AS reached_late
    FROM ev
    LEFT JOIN late l ON l.opp_key = ev.opp_key
)
SELECT
    rep_key,
    k,
    CAST(SUM(is_new) AS DOUBLE) AS n_new,
    CAST(SUM(CASE WHEN is_new = 1 THEN cents ELSE 0 END) AS DOUBLE) AS amt_new,
    CAST(SUM(CASE WHEN is_close = 1 AND is_won = 1 THEN 1 ELSE 0 END) AS DOUBLE) AS n_won,
    CAST(SUM(CASE WHEN is_close = 1 AND is_won = 0 THEN 1 ELSE 0 END) AS DOUBLE) AS n_lost,
    CAST(SUM(CASE WHEN is_close = 1 AND is_won = 1 THEN cents ELSE 0 END) AS DOUBLE) AS amt_won,
    CAST(SUM(CASE WHEN is_close = 1 AND is_won = 1 THEN cycle_days ELSE 0 END) AS DOUBLE) AS cycle_won,
    CAST(SUM(CASE WHEN is_close = 1 AND is_won = 0 AND reached_late = 1 THEN 1 ELSE 0 END) AS DOUBLE)
        AS n_lost_late,
    CAST(SUM(CASE WHEN is_close = 1 AND is_won = 0 AND reached_late IS NOT NULL THEN 1 ELSE 0 END) AS DOUBLE)
        AS n_lost_known,
    CAST(SUM(is_slip) AS DOUBLE) AS n_slip
FROM flagged
GROUP BY rep_key, k
