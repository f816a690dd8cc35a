import express, { type Router } from 'express';
import fs from 'node:fs';
import path from 'node:path';
import { openApiDocument } from '../contract/openapi-document';
import { packageRoot } from './package-root';
import { pageSecurityHeaders } from './page-security';

/** Swagger UI's CSS holds its icons as data: URLs, the one allowance it needs (its browser test fails on any CSP violation). */
const securityHeaders = pageSecurityHeaders({ 'img-src': "'self' data:", 'form-action': "'none'" });

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>omniscrape API reference</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
</head>
<body>
<div id="reference"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/docs.js"></script>
</body>
</html>
`;

/** The page's files by name: Swagger UI's own build from its npm package, and our start-up script. */
function referenceFiles(): Map<string, string> {
  const swaggerUi = path.dirname(require.resolve('swagger-ui-dist/package.json'));
  return new Map([
    ['swagger-ui.css', path.join(swaggerUi, 'swagger-ui.css')],
    ['swagger-ui-bundle.js', path.join(swaggerUi, 'swagger-ui-bundle.js')],
    ['favicon-32x32.png', path.join(swaggerUi, 'favicon-32x32.png')],
    ['docs.js', path.join(packageRoot(__dirname), 'static', 'docs', 'docs.js')],
  ]);
}

/** GET /openapi.json and GET /docs: the API's reference, readable without a key. */
export function referenceRouter(): Router {
  const { version } = JSON.parse(
    fs.readFileSync(path.join(packageRoot(__dirname), 'package.json'), 'utf8'),
  ) as { version: string };
  const document = JSON.stringify(openApiDocument(version));
  const files = referenceFiles();
  const router = express.Router();
  router.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(document);
  });
  router.get('/docs', securityHeaders, (_req, res) => {
    res.type('html').send(PAGE);
  });
  router.get('/docs/:file', securityHeaders, (req: express.Request<{ file: string }>, res, next) => {
    const file = files.get(req.params.file);
    if (!file) {
      next();
      return;
    }
    res.set('Cache-Control', 'public, max-age=300').sendFile(file);
  });
  return router;
}
