import { dirname } from 'node:path';
import express, { type Router } from 'express';

/**
 * The interactive API docs page (Swagger UI from the swagger-ui-dist package,
 * served locally: no CDN) reading /api/v1/openapi.json.
 */
export const docsRouter = (): Router => {
  const router = express.Router();
  const dist = dirname(require.resolve('swagger-ui-dist/package.json'));
  router.get('/', (_req, res) => {
    res.type('html').send(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Port Authorizing API</title>
<link rel="stylesheet" href="assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="assets/swagger-ui-bundle.js"></script>
<script src="init.js"></script></body></html>`);
  });
  router.get('/init.js', (_req, res) => {
    res.type('application/javascript').send(
      "window.ui = SwaggerUIBundle({ url: '../openapi.json', dom_id: '#swagger-ui', persistAuthorization: false, tryItOutEnabled: true });",
    );
  });
  router.use('/assets', express.static(dist, { index: false, maxAge: '1h' }));
  return router;
};
