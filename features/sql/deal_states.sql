-- deal_states: one row per interval during which a deal's state did not change.
-- A state applies to snapshots with valid_from <= as_of < valid_to (valid_to NULL: still current);
-- valid_from is the day of the change + 1, since a snapshot only uses what was known before its day.
--   * with opportunity_history: the earliest history row is the creation state (from created + 1),
--     each later row takes over the day after its change; of several changes on one day the last
--     (by timestamp, then file order) wins. A deal closed in `opportunities` whose history never
--     shows the close gets its final state from close_date + 1.
--   * a deal without history rows (every deal when the table is absent: the fallback) is open from
--     created_date with its final amount and close_date (stage unknown if it is closed now), and
--     closed from close_date + 1.
-- A stage is closed when its name says so (won, lost, closed...); a stage that deals in
-- `opportunities` carry is also closed when every one of them is closed with one outcome and deals
-- in the history do not move on from it (at most 1 in 20 of its entries): Pipedrive and Dynamics 365
-- keep a closed deal's last open stage (won / lost is a status there), so a stage that open deals
-- still carry, that holds won and lost deals, or that deals leave is open. A closed stage holding
-- both outcomes gives each deal its own. A stage no deal carries: by its name alone. A stage closed
-- by its deals alone (not by its name) closes a deal on its close_date, not the day it enters the
-- stage: in Pipedrive a deal can wait open in the last stage (Contract signed) until it is marked won.
-- is_late marks proposal-or-later stages by name (features/stages.py is_late: the late words, or
-- the word close alone or last, never closed; not a value proposition).
-- prev_closed / prev_close_d describe the deal's previous interval (NULL for its first).
WITH stage_names AS (
    SELECT stage_code, stage_name, LOWER(TRIM(stage_name)) AS stage_key
    FROM stg_stages
),
stage_map AS (
    SELECT
        sn.stage_key,
        MIN(CASE WHEN o.is_closed THEN 1 ELSE 0 END) AS all_closed,
        MIN(CASE WHEN o.is_won THEN 1 ELSE 0 END) AS all_won,
        MAX(CASE WHEN o.is_won THEN 1 ELSE 0 END) AS any_won
    FROM stg_opps o
    JOIN stage_names sn ON sn.stage_code = o.stage_code
    GROUP BY sn.stage_key
),
hist AS (
    SELECT
        h.opp_key,
        o.rep_key,
        o.created_d,
        CASE WHEN o.is_won THEN 1 ELSE 0 END AS deal_won,
        CASE WHEN o.is_closed THEN o.close_d END AS deal_close_d,
        h.changed_d,
        h.stage_code,
        h.amount,
        h.close_d,
        ROW_NUMBER() OVER (PARTITION BY h.opp_key ORDER BY h.changed_us, h.row_no) AS ord,
        LEAD(h.row_no) OVER (PARTITION BY h.opp_key ORDER BY h.changed_us, h.row_no) AS next_row,
        LAG(h.stage_code) OVER (PARTITION BY h.opp_key ORDER BY h.changed_us, h.row_no) AS prev_stage,
        LEAD(h.stage_code) OVER (PARTITION BY h.opp_key ORDER BY h.changed_us, h.row_no) AS next_stage
    FROM stg_history h
    JOIN stg_opps o ON o.opp_key = h.opp_key
),
stage_moves AS (
    -- per stage: how often deals entered it and how often they moved on to another stage
    SELECT
        sn.stage_key,
        SUM(CASE WHEN hs.prev_stage IS NULL OR hs.prev_stage <> hs.stage_code THEN 1 ELSE 0 END) AS entries,
        SUM(CASE WHEN hs.next_stage IS NOT NULL AND hs.next_stage <> hs.stage_code THEN 1 ELSE 0 END) AS exits
    FROM hist hs
    JOIN stage_names sn ON sn.stage_code = hs.stage_code
    GROUP BY sn.stage_key
),
stage_attr AS (
    SELECT
        sn.stage_code,
        CASE WHEN sn.stage_key LIKE '%won%' OR sn.stage_key LIKE '%lost%' OR sn.stage_key LIKE 'closed%' THEN 1
             ELSE 0 END AS closed_by_name,
        CASE WHEN sn.stage_key LIKE '%won%' OR sn.stage_key LIKE '%lost%' OR sn.stage_key LIKE 'closed%' THEN 1
             WHEN sm.stage_key IS NULL OR sm.all_closed = 0 THEN 0
             WHEN sm.any_won = 1 AND sm.all_won = 0 THEN 0
             WHEN COALESCE(mv.exits, 0) * 20 > COALESCE(mv.entries, 0) THEN 0
             ELSE 1 END AS closed_flag,
        -- NULL: a closed stage holding won and lost deals, where each deal's own outcome holds
        CASE WHEN sm.stage_key IS NULL THEN (CASE WHEN sn.stage_key LIKE '%won%' THEN 1 ELSE 0 END)
             WHEN sm.all_won = 1 THEN 1
             WHEN sm.any_won = 0 THEN 0 END AS won_flag,
        -- Salesforce's Value Proposition comes before its decision-maker and perception stages: early
        CASE WHEN sn.stage_key LIKE '%value prop%' THEN 0
             WHEN sn.stage_key LIKE '%propos%' OR sn.stage_key LIKE '%negotiat%' OR sn.stage_key LIKE '%contract%'
                  OR sn.stage_key LIKE '%commit%' OR sn.stage_key LIKE '%quote%' OR sn.stage_key LIKE '%verbal%'
                  OR sn.stage_key = 'close' OR sn.stage_key LIKE '% close' OR sn.stage_key LIKE '%-close'
             THEN 1 ELSE 0 END AS is_late
    FROM stage_names sn
    LEFT JOIN stage_map sm ON sm.stage_key = sn.stage_key
    LEFT JOIN stage_moves mv ON mv.stage_key = sn.stage_key
),
hist_closed AS (
    -- A stage closed only by its deals closes a deal at its close_date, not when the deal enters it:
    -- deals wait open in Pipedrive's last stage (e.g. Contract signed) until they are marked won.
    SELECT
        hs.*,
        sa.won_flag,
        CASE WHEN sa.closed_flag = 1
                  AND (sa.closed_by_name = 1 OR hs.changed_d >= hs.deal_close_d) THEN 1
             ELSE 0 END AS closed_now
    FROM hist hs
    LEFT JOIN stage_attr sa ON sa.stage_code = hs.stage_code
),
hist_states AS (
    SELECT
        hs.opp_key,
        hs.rep_key,
        hs.created_d,
        hs.ord,
        CASE WHEN hs.ord = 1 THEN hs.created_d + 1
             ELSE GREATEST(hs.changed_d, hs.created_d) + 1 END AS valid_from,
        hs.stage_code,
        hs.amount,
        hs.close_d,
        hs.closed_now AS is_closed,
        CASE WHEN hs.closed_now = 1 THEN COALESCE(hs.won_flag, hs.deal_won) ELSE 0 END AS is_won,
        CASE WHEN hs.next_row IS NULL THEN 1 ELSE 0 END AS is_last
    FROM hist_closed hs
),
final_close AS (
    SELECT
        o.opp_key,
        o.rep_key,
        o.created_d,
        lh.ord + 1 AS ord,
        GREATEST(GREATEST(o.close_d, o.created_d) + 1, lh.valid_from) AS valid_from,
        o.stage_code,
        o.amount,
        o.close_d,
        1 AS is_closed,
        CASE WHEN o.is_won THEN 1 ELSE 0 END AS is_won
    FROM stg_opps o
    JOIN hist_states lh ON lh.opp_key = o.opp_key AND lh.is_last = 1
    WHERE o.is_closed AND lh.is_closed = 0
),
no_hist AS (
    SELECT o.*
    FROM stg_opps o
    LEFT JOIN (SELECT opp_key FROM hist_states WHERE is_last = 1) hk ON hk.opp_key = o.opp_key
    WHERE hk.opp_key IS NULL
),
all_states AS (
    SELECT opp_key, rep_key, created_d, ord, valid_from, stage_code, amount, close_d, is_closed, is_won
    FROM hist_states
    UNION ALL
    SELECT opp_key, rep_key, created_d, ord, valid_from, stage_code, amount, close_d, is_closed, is_won
    FROM final_close
    UNION ALL
    SELECT
        opp_key, rep_key, created_d, 1 AS ord, created_d + 1 AS valid_from,
        CASE WHEN is_closed THEN NULL ELSE stage_code END AS stage_code,
        amount, close_d, 0 AS is_closed, 0 AS is_won
    FROM no_hist
    UNION ALL
    SELECT
        opp_key, rep_key, created_d, 2 AS ord, GREATEST(close_d, created_d) + 1 AS valid_from,
        stage_code, amount, close_d, 1 AS is_closed, CASE WHEN is_won THEN 1 ELSE 0 END AS is_won
    FROM no_hist
    WHERE is_closed
),
day_last AS (
    -- of several states starting on the same day, the last one is the state of that day
    SELECT opp_key, valid_from, MAX(ord) AS ord
    FROM all_states
    GROUP BY opp_key, valid_from
),
kept AS (
    SELECT a.*
    FROM all_states a
    JOIN day_last dl ON dl.opp_key = a.opp_key AND dl.ord = a.ord
)
SELECT
    k.opp_key,
    k.rep_key,
    k.created_d,
    k.ord,
    k.valid_from,
    LEAD(k.valid_from) OVER (PARTITION BY k.opp_key ORDER BY k.ord) AS valid_to,
    k.stage_code,
    k.amount,
    k.close_d,
    k.is_closed,
    k.is_won,
    CASE WHEN k.stage_code IS NULL THEN NULL ELSE COALESCE(sa.is_late, 0) END AS is_late,
    LAG(k.is_closed) OVER (PARTITION BY k.opp_key ORDER BY k.ord) AS prev_closed,
    LAG(k.close_d) OVER (PARTITION BY k.opp_key ORDER BY k.ord) AS prev_close_d
FROM kept k
LEFT JOIN stage_attr sa ON sa.stage_code = k.stage_code
