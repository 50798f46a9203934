// ReDoc over our OpenAPI, from our own files (the page's CSP allows no inline script).
Redoc.init("/openapi.json", {}, document.getElementById("redoc"));
