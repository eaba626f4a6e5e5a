// Swagger UI over the service's own OpenAPI document (a file, not inline, so a strict CSP can allow it).
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.schemaUrl,
  domNode: root,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // The default sends the document's URL to an online validator; nothing here leaves the service.
  validatorUrl: null,
  deepLinking: true,
  tryItOutEnabled: false,
});
