-- metric_starts: the first day each engagement metric appears in the data (a metric is
-- "tracked" for a snapshot from the day after), and the name of each metric.
SELECT m.metric_name, MIN(e.d) AS start_d
FROM stg_engagement e
JOIN stg_metrics m ON m.metric_code = e.metric_code
WHERE e.d IS NOT NULL
GROUP BY m.metric_name
