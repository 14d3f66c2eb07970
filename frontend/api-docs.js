// The interactive API reference on /api/v1/docs: Swagger UI from the
// swagger-ui-dist package, bundled here so that the page loads no script
// from elsewhere and needs no inline code under the site's CSP.
import SwaggerUIBundle from "swagger-ui-dist/swagger-ui-bundle.js";
import "swagger-ui-dist/swagger-ui.css";

const root = document.getElementById("api-docs");
if (root) {
  SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    domNode: root,
    deepLinking: true,
    // Keeps the token that a user pastes into "Authorize" for this tab only.
    persistAuthorization: false,
  });
}
