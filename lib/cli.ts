/**
 * What every role's `main()` shares: reading its configuration, `--help` and `--version`,
 * turning user mistakes into one line and an exit code, and shutdown signals.
 *
 * @module
 */
import {
  type CommandSpec,
  type ConfigSources,
  helpText,
  type OptionSpecs,
  parseCommand,
  type ParsedCommand,
  processSources,
  UsageError,
} from "./config.ts";
import { printErr, printOut } from "./io.ts";
import denoConfig from "../deno.json" with { type: "json" };

/** The project version, from `deno.json`. */
export const VERSION: string = denoConfig.version;

/** A failure the user can fix (server not running, port in use): one line, exit 1. */
export class FatalError extends Error {
  /** Builds the error from a one-line description that says what to do. */
  constructor(message: string) {
    super(message);
    this.name = "FatalError";
  }
}

/**
 * Parses the process's flags, environment and `.env` for `spec`. Handles `--help` and
 * `--version` by printing and exiting 0; any mistake prints one line and exits 2.
 */
export function loadCommand<S extends OptionSpecs>(
  spec: CommandSpec<S>,
  args: readonly string[] = Deno.args,
  sources?: ConfigSources,
): ParsedCommand<S> {
  let parsed: ParsedCommand<S>;
  try {
    parsed = parseCommand(spec, args, sources ?? processSources());
  } catch (error) {
    if (error instanceof UsageError) {
      printErr(`${spec.name}: ${error.message} (see --help)\n`);
      Deno.exit(2);
    }
    throw error;
  }
  if (parsed.help) {
    printOut(helpText(spec));
    Deno.exit(0);
  }
  if (parsed.version) {
    printOut(`${spec.name} ${VERSION}\n`);
    Deno.exit(0);
  }
  return parsed;
}

/**
 * Runs a role's main body: a {@linkcode FatalError} becomes one line on stderr and exit 1,
 * a {@linkcode UsageError} exit 2. Anything else is a bug and keeps its stack trace.
 */
export async function runMain(
  name: string,
  body: () => void | Promise<void>,
): Promise<void> {
  try {
    await body();
  } catch (error) {
    if (error instanceof FatalError || error instanceof UsageError) {
      printErr(`${name}: ${error.message}\n`);
      Deno.exit(error instanceof UsageError ? 2 : 1);
    }
    throw error;
  }
}

/**
 * Calls `handler` on the first SIGINT or SIGTERM (SIGINT only on Windows). A second signal
 * while the handler runs exits at once with status 1. Adding a listener replaces Deno's
 * default exit, so the handler must end the process itself.
 */
export function onShutdownSignal(handler: (signal: Deno.Signal) => void | Promise<void>): void {
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  let stopping = false;
  for (const signal of signals) {
    Deno.addSignalListener(signal, () => {
      if (stopping) Deno.exit(1);
      stopping = true;
      void handler(signal);
    });
  }
}

/**
 * Reads a text file that a flag names (`--tls-cert`, `--password-file`, ...), or throws a
 * {@linkcode FatalError} that names the flag and says what to do: no permission (checked
 * first, so Deno never stops to prompt), no such file, unreadable. `hint` ends the
 * no-such-file line.
 */
export function readFlagFile(path: string, flag: string, hint = ""): string {
  if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") {
    throw new FatalError(`${flag}: no permission to read ${path}: run with --allow-read=${path}`);
  }
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "no such file" : (error as Error).message;
    throw new FatalError(`${flag}: cannot read ${path} (${why})${hint}`);
  }
}
