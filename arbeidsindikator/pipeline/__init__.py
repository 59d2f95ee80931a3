"""From validated register tables to the published tables: outcomes, the expected-outcome
model, the indicator, its uncertainty, period cells, disclosure control, publication, the
results store and the reader of it (`Results`), on DuckDB or Spark. Imports only `data` and the
shared `norsk` vocabulary."""
