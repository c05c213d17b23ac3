// Starts Swagger UI on /docs from a file of the site's own: the page runs no inline script,
// so it is sent with the same Content-Security-Policy as the web pages. The address of the
// OpenAPI document comes from the page (data-openapi on the mount point).
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.openapi,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  // A box to find an operation by its tag among the API's many.
  filter: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
