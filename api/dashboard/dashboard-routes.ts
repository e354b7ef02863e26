import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PlinthError } from '../../common/plinth-error.js';
import { defaultDashboardAssetDir, loadDashboardAssets, type DashboardAsset } from './dashboard-assets.js';
import { DASHBOARD_SECURITY_HEADERS } from './security-headers.js';

export const DASHBOARD_PREFIX = '/ui/';
const INDEX_FILE = 'index.html';
/** Longest file name worth looking up; every real one is far shorter. */
const FILE_NAME_MAX_LENGTH = 64;

export interface DashboardRouteOptions {
  /** Where the page's files are; default: the package's api/dashboard/public/. */
  readonly assetDir?: string;
}

/**
 * The web dashboard (issue 6): static files under /ui/, with no token, as the
 * page holds no data; every data call it makes goes to /v1 with the bearer
 * token. `/` redirects to the page. Routes are hidden from the OpenAPI document.
 */
export async function registerDashboardRoutes(app: FastifyInstance, options: DashboardRouteOptions = {}): Promise<void> {
  const assets = await loadDashboardAssets(options.assetDir ?? defaultDashboardAssetDir());
  const hide = { schema: { hide: true } };

  app.get('/', hide, async (_request, reply) => reply.redirect(DASHBOARD_PREFIX, 302));

  await app.register(async (ui) => {
    // Set before the handler runs so error answers (404) carry them too.
    ui.addHook('onRequest', async (_request, reply) => {
      reply.headers(DASHBOARD_SECURITY_HEADERS);
    });
    ui.get('/ui', hide, async (_request, reply) => reply.redirect(DASHBOARD_PREFIX, 301));
    ui.get<{ Params: { '*': string } }>('/ui/*', hide, async (request, reply) => {
      const fileName = request.params['*'] === '' ? INDEX_FILE : request.params['*'];
      return sendAsset(request, reply, lookUp(assets, fileName));
    });
  });
}

function lookUp(assets: ReadonlyMap<string, DashboardAsset>, fileName: string): DashboardAsset {
  const asset = fileName.length <= FILE_NAME_MAX_LENGTH ? assets.get(fileName) : undefined;
  if (asset === undefined) {
    const shown = fileName.length <= FILE_NAME_MAX_LENGTH ? fileName : `${fileName.slice(0, FILE_NAME_MAX_LENGTH)}…`;
    throw new PlinthError('NOT_FOUND', `no dashboard file ${JSON.stringify(shown)}`);
  }
  return asset;
}

function sendAsset(request: FastifyRequest, reply: FastifyReply, asset: DashboardAsset): FastifyReply {
  // Names carry no content hash, so the browser revalidates every time; the ETag keeps that to a 304.
  reply.header('cache-control', 'no-cache');
  reply.header('etag', asset.etag);
  if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
  return reply.type(asset.contentType).send(asset.body);
}
