// Placeholder replaced by the full status page (issue 5); kept tiny so the admin port links work.
export const STATUS_PAGE = '<!doctype html><title>Turbine</title><p>See <a href="/routes">/routes</a> and <a href="/metrics">/metrics</a>.';
