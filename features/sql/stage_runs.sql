-- stage_runs: deal_states with each interval's stage run. A deal's stage run is a maximal run of
-- consecutive intervals in one open stage (a slipped close date or a new amount starts a new
-- interval, not a new run); run_start is the valid_from of the run's first interval. When an
-- interval starts a new run after an open one (is_start = 1, prev_closed = 0), the previous run was
-- exited on its valid_from: prev_run_start and prev_late describe the run left behind.
WITH flagged AS (
    SELECT
        s.opp_key, s.rep_key, s.ord, s.valid_from, s.valid_to, s.stage_code, s.is_closed, s.is_won,
        s.is_late, s.prev_closed,
        CASE WHEN s.prev_closed IS NULL OR s.is_closed <> s.prev_closed OR s.stage_code IS NULL
                  OR LAG(s.stage_code) OVER (PARTITION BY s.opp_key ORDER BY s.ord) IS NULL
                  OR s.stage_code <> LAG(s.stage_code) OVER (PARTITION BY s.opp_key ORDER BY s.ord)
             THEN 1 ELSE 0 END AS is_start
    FROM deal_states s
),
started AS (
    SELECT
        f.*,
        MAX(CASE WHEN f.is_start = 1 THEN f.valid_from END)
            OVER (PARTITION BY f.opp_key ORDER BY f.ord ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            AS run_start
    FROM flagged f
)
SELECT
    st.*,
    LAG(st.run_start) OVER (PARTITION BY st.opp_key ORDER BY st.ord) AS prev_run_start,
    LAG(st.is_late) OVER (PARTITION BY st.opp_key ORDER BY st.ord) AS prev_late
FROM started st
