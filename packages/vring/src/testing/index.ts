export { MockDevice, type MockDeviceOptions, type MockHandlerResult } from './mock-device.js';
export { MockDriver, type MockSendOptions, type MockUsed } from './mock-driver.js';
export {
  createTestQueueMemory,
  type QueueKind,
  type TestQueueMemory,
  type TestQueueOptions,
} from './queue-memory.js';
