-- fit-tables.lua: pandoc's man writer turns relative column widths into a
-- table 70 ens wide, more than an 80-column terminal has beside the page's
-- indent (tbl then warns "table wider than line width"). Scaled to 85%.
function Table(t)
  for _, spec in ipairs(t.colspecs) do
    if type(spec[2]) == 'number' then
      spec[2] = spec[2] * 0.85
    end
  end
  return t
end
