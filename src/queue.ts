// Public API of 'bulwark/queue': re-exports only. It imports neither bullmq nor ioredis:
// the adapters take the worker, queues and client the application already has.
export {
  messageHandler,
  type Delivery,
  type MessageBreaker,
  type MessageDependency,
  type MessageHandler,
  type MessageHandlerOptions,
  type MessageWork,
} from './queue/message-handler.js';
export {
  classifyFailure,
  failureRecord,
  type DeadLetterReason,
  type Decision,
  type FailureKind,
  type FailureRecord,
  type MessageAction,
} from './queue/decision.js';
export type { DeadLetter } from './queue/dead-letter.js';
export {
  bullmqProcessor,
  type BullmqJobLike,
  type BullmqProcessor,
  type BullmqProcessorOptions,
  type BullmqQueueLike,
  type BullmqWorkerLike,
  type DeadLettered,
} from './queue/bullmq.js';
export {
  redrive,
  type DeadLetterQueueLike,
  type RedriveOptions,
  type RedriveResult,
  type RedriveTargetLike,
} from './queue/redrive.js';
export {
  streamConsumer,
  type StreamConsumer,
  type StreamConsumerOptions,
  type StreamMessage,
  type StreamsClientLike,
} from './queue/stream-consumer.js';
