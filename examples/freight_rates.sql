WITH RECURSIVE
  origin_regions(slug) AS (
    SELECT slug FROM regions WHERE slug = 'china_main'
    UNION
    SELECT r.slug FROM regions r JOIN origin_regions o ON r.parent_slug = o.slug
  ),
  destination_regions(slug) AS (
    SELECT slug FROM regions WHERE slug = 'north_europe_main'
    UNION
    SELECT r.slug FROM regions r JOIN destination_regions d ON r.parent_slug = d.slug
  ),
  origin_ports(code) AS (
    SELECT code FROM ports WHERE code = 'china_main'
    UNION
    SELECT p.code FROM ports p JOIN origin_regions o ON p.parent_slug = o.slug
  ),
  destination_ports(code) AS (
    SELECT code FROM ports WHERE code = 'north_europe_main'
    UNION
    SELECT p.code FROM ports p JOIN destination_regions d ON p.parent_slug = d.slug
  )
SELECT day, CASE WHEN count(price) >= 3 THEN avg(price) END AS average_price
FROM prices
WHERE orig_code IN (SELECT code FROM origin_ports)
  AND dest_code IN (SELECT code FROM destination_ports)
GROUP BY day
ORDER BY day
