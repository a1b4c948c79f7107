export type { Clock } from './clock.js';
export type { Logger } from './logger.js';
export type { Shell, HostRef, ExecOptions, ExecResult } from './shell.js';
export type { ShellCommand } from './shell-command.js';
export type { Cloud } from './cloud.js';
export type { NodeRpc, NodeEndpoint, NodeHealth } from './node-rpc.js';
export type { Chat, MessageRef, OutgoingMessage, Block } from './chat.js';
export type { RateLimiter, RateVerdict } from './rate-limiter.js';
