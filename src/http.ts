// Public API of 'bulwark/http': resilient outbound fetch, and the inbound guard for
// node:http, Express and Fastify (neither framework is imported: both are optional peers).
export {
  httpClient,
  resilientFetch,
  type FetchCallOptions,
  type FetchDependency,
  type HttpClient,
  type HttpClientOptions,
  type ResilientFetchOptions,
} from './http/fetch.js';
export {
  isRetryableHttpError,
  HttpStatusFailure,
  NotRepeatableFailure,
} from './http/fetch-failures.js';
export { HttpError } from './http/errors.js';
export { formatRetryAfter, parseRetryAfter, retryAfterFromHeaders } from './http/retry-after.js';
export {
  DEADLINE_HEADER,
  DEFAULT_DEADLINE_MARGIN,
  DEFAULT_MAX_BUDGET,
  ENVOY_TIMEOUT_HEADER,
  GRPC_TIMEOUT_HEADER,
  encodeDeadline,
  formatGrpcTimeout,
  parseDeadlineMs,
  parseGrpcTimeout,
  readDeadline,
  readDeadlineHeaders,
  type DeadlineReading,
  type IncomingHeaders,
  type ReadDeadlineOptions,
} from './http/deadline-header.js';
export { bulwarkHandler } from './http/handler.js';
export { errorToStatus, problemResponse, type ProblemResponse } from './http/problem-response.js';
export { outsideRequest, requestContext } from './http/request-context.js';
export type { StoredResponse } from './http/response-recorder.js';
export type {
  BulwarkListener,
  BulwarkRequestHandler,
  BulwarkServerOptions,
  DeadlineOptions,
  IdempotencyHttpOptions,
} from './http/server-options.js';
export {
  bulwarkErrorHandler,
  bulwarkMiddleware,
  type BulwarkMiddleware,
  type ExpressLikeErrorHandler,
  type ExpressLikeNext,
  type ExpressLikeRequest,
} from './http/express.js';
export {
  bulwarkFastify,
  type BulwarkFastifyPlugin,
  type FastifyLikeHandler,
  type FastifyLikeHook,
  type FastifyLikeInstance,
  type FastifyLikeRouteOptions,
  type FastifyLikeReply,
  type FastifyLikeRequest,
} from './http/fastify.js';
