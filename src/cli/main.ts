import { loadConfig, type Config } from '../config/index.js';
import { ConfigError, describeError, isQualmError } from '../errors.js';
import { UsageError } from './args.js';
import * as buildIndex from './commands/build-index.js';
import * as demo from './commands/demo.js';
import * as evaluate from './commands/evaluate.js';
import * as label from './commands/label.js';
import * as model from './commands/model.js';
import * as probe from './commands/probe.js';
import * as produce from './commands/produce.js';
import * as score from './commands/score.js';
import * as worker from './commands/worker.js';

interface Command {
  HELP: string;
  run(argv: string[], config: Config): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  worker,
  'build-index': buildIndex,
  produce,
  label,
  demo,
  probe,
  evaluate,
  score,
  model,
};

/** The command names `qualm <command>` accepts. */
export const COMMAND_NAMES: readonly string[] = Object.keys(COMMANDS);

export const MAIN_HELP = `qualm: label-free uncertainty monitoring for contrastive encoders on Kafka

Usage: qualm <command> [options]

Commands:
  worker        score the input topic, publish flagged samples to the review topic
  build-index   embed a labelled reference set and write a new reference bundle
  produce       stream Fashion-MNIST / MNIST / malformed samples to the input topic
  label         publish reviewers' labels of flagged samples to the labels topic
  demo          the whole path on a local Kafka broker, with a live summary
  probe         linear-probe accuracy of the encoder on Fashion-MNIST (for the model card)
  evaluate      rank qualm's uncertainty and baselines against a downstream probe's errors
  score         score a file or stdin offline against the current bundle (JSONL or CSV out)
  model         write a starter manifest for an ONNX encoder (init), or try it on a dummy batch (check)

Run 'qualm <command> --help' for a command's options. Configuration comes from environment
variables (or a JSON file named by QUALM_CONFIG_FILE): see the README.`;

/** Runs the CLI and returns the exit code; only bin/qualm.js calls process.exit. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(MAIN_HELP);
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  if (cmd === undefined) {
    console.error(`qualm: unknown command ${JSON.stringify(name)}\n\n${MAIN_HELP}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.HELP);
    return 0;
  }
  try {
    const config = loadConfig(process.env);
    return await cmd.run(rest, config);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`qualm ${name}: ${err.message}\n\n${cmd.HELP}`);
      return 2;
    }
    if (err instanceof ConfigError) {
      console.error(`qualm ${name}: ${err.message}`);
      return 78;
    }
    console.error(`qualm ${name}: ${isQualmError(err) ? `[${err.code}] ` : ''}${describeError(err)}`);
    if (!isQualmError(err) && err instanceof Error && err.stack !== undefined) console.error(err.stack);
    return 1;
  }
}
