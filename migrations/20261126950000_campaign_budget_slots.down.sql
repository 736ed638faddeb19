UPDATE campaigns c SET spent_points = c.spent_points + s.spent
FROM (SELECT partner_id, code, sum(spent) AS spent FROM campaign_budget_slots GROUP BY 1, 2) s
WHERE s.partner_id = c.partner_id AND s.code = c.code;
DROP TABLE campaign_budget_slots;
