// Renders /openapi.json with Swagger UI (served from its npm package beside this file, no CDN).
/* global SwaggerUIBundle */
window.addEventListener('DOMContentLoaded', function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#reference',
    deepLinking: true,
    // No badge from the public validator: the page loads nothing from other hosts.
    validatorUrl: null,
    defaultModelsExpandDepth: 0,
  });
});
