"""The pages people use in a browser: server-rendered, same origin as the API."""
