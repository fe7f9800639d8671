// The one place loggers are made: JSON lines to stdout, a child per component so every line says
// where it came from. Callers pass app id, task id and backend as fields, never inside the message.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level: LevelWithSilent;
  format: 'json' | 'pretty';
}

export function createLogger(options: LoggerOptions): Logger {
  if (options.format === 'pretty') {
    // pino-pretty is a dev dependency of the operator's choosing, loaded through pino's transport.
    return pino({ level: options.level, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  return pino({ level: options.level, base: { name: 'turbine' } });
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
