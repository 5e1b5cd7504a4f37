/**
 * Configuration shared by every role.
 *
 * A value comes from, in order of precedence: a command-line flag, the process environment,
 * a `.env` file in the working directory, the option's default. Every role describes its
 * options once as an {@linkcode OptionSpecs} table; flags, `--help` text, environment names
 * and validation all derive from it, so a role cannot document a flag it does not accept.
 *
 * Bad input throws {@linkcode UsageError}, whose message is one line that names the problem.
 *
 * @module
 */
import { parseArgs, parseEnv } from "node:util";

/** A mistake in how a program was invoked (bad flag, bad value, malformed `.env`). */
export class UsageError extends Error {
  /** Builds the error from a one-line description of the mistake. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

interface BaseOption {
  /** One line for `--help`. */
  description: string;
  /** A one-letter alias, without the dash. */
  short?: string;
  /** The environment (and `.env`) variable that also sets this option. */
  env?: string;
  /** The placeholder shown in `--help`, e.g. `PORT`. */
  valueName?: string;
  /** Settable only through `env` (secrets that must not appear on a command line). */
  envOnly?: boolean;
}

/** A whole number within `[min, max]`. */
export interface IntegerOption extends BaseOption {
  /** Discriminant. */
  type: "integer";
  /** Used when no source sets the option. */
  default: number;
  /** Smallest accepted value. */
  min: number;
  /** Largest accepted value. */
  max: number;
}

/** A decimal number within `[min, max]` (used for durations in seconds). */
export interface NumberOption extends BaseOption {
  /** Discriminant. */
  type: "number";
  /** Used when no source sets the option. */
  default: number;
  /** Smallest accepted value. */
  min: number;
  /** Largest accepted value. */
  max: number;
}

/** Free text, or one of a fixed list of `choices`. */
export interface StringOption extends BaseOption {
  /** Discriminant. */
  type: "string";
  /** Used when no source sets the option. */
  default: string;
  /** When present, the only accepted values. */
  choices?: readonly string[];
}

/** An on/off switch; as a flag it takes no value. */
export interface BooleanOption extends BaseOption {
  /** Discriminant. */
  type: "boolean";
  /** Used when no source sets the option. */
  default: boolean;
}

/** Any option a role may declare. */
export type OptionSpec = IntegerOption | NumberOption | StringOption | BooleanOption;

/** A role's options, keyed by camelCase name (the flag is its kebab-case form). */
export type OptionSpecs = Record<string, OptionSpec>;

/** The parsed values of an {@linkcode OptionSpecs} table, typed per option. */
export type ConfigValues<S extends OptionSpecs> = {
  -readonly [K in keyof S]: S[K] extends BooleanOption ? boolean
    : S[K] extends StringOption ? string
    : number;
};

/** Everything `--help` says about a role, and the options it accepts. */
export interface CommandSpec<S extends OptionSpecs> {
  /** The script's file name, used as the prefix of error lines (`server.ts`). */
  name: string;
  /** One line saying what the program does. */
  summary: string;
  /** Usage lines, without the leading `Usage:`. */
  usage: readonly string[];
  /** The options. */
  options: S;
  /** Whether free arguments are accepted (e.g. the client's message). */
  positionals?: boolean;
  /** Example command lines for `--help`. */
  examples?: readonly string[];
  /** Extra paragraphs for `--help`. */
  notes?: readonly string[];
}

/** The outcome of {@linkcode parseCommand}. */
export interface ParsedCommand<S extends OptionSpecs> {
  /** The merged, validated values. */
  values: ConfigValues<S>;
  /** Free arguments, when the spec accepts them. */
  positionals: string[];
  /** `--help` or `-h` was given. */
  help: boolean;
  /** `--version` or `-V` was given. */
  version: boolean;
}

/** Where {@linkcode parseCommand} looks for values besides the flags. */
export interface ConfigSources {
  /** Reads one environment variable; `undefined` when unset or not permitted. */
  env: (name: string) => string | undefined;
  /** The variables of the `.env` file (empty when there is none). */
  dotenv: Record<string, string>;
}

/** `--host` and `--port` as every role declares them. */
export const ADDRESS_OPTIONS = {
  host: {
    type: "string",
    default: "127.0.0.1",
    env: "SERVER_HOST",
    valueName: "HOST",
    description: "address to use: 127.0.0.1, ::1, 0.0.0.0 (all IPv4), a host name",
  },
  port: {
    type: "integer",
    default: 8080,
    min: 0,
    max: 65535,
    short: "p",
    env: "SERVER_PORT",
    valueName: "PORT",
    description: "TCP port (0 = any free port, servers only)",
  },
} as const satisfies OptionSpecs;

/** `--timeout` as the clients declare it (give the description its role's meaning). */
export const TIMEOUT_OPTION = {
  type: "number",
  default: 5,
  min: 0.001,
  max: 3600,
  valueName: "SECONDS",
  description: "give up after this long",
} as const satisfies OptionSpec;

/** `--rate` (lines per second, 0 = unlimited) as the chat roles declare it. */
export const RATE_OPTION = {
  type: "number",
  default: 10,
  min: 0,
  max: 1_000_000,
  valueName: "N",
  description: "lines per second (0 = no limit)",
} as const satisfies OptionSpec;

/**
 * Connections one address may hold by default: a class of 30 to 40 behind one NAT, each with a
 * client or two open, fits; one script cannot take the other 900 places.
 */
export const DEFAULT_MAX_PER_ADDRESS = 100;

/** `--max-per-address` as both servers declare it. */
export const MAX_PER_ADDRESS_OPTION = {
  type: "integer",
  default: DEFAULT_MAX_PER_ADDRESS,
  min: 0,
  max: 1_000_000,
  valueName: "N",
  description:
    "connections at once from one address (an IPv6 /64); 0 = no limit (default fits a class behind one NAT)",
} as const satisfies OptionSpec;

/** `--tls-cert` and `--tls-key` as both servers declare them. */
export const TLS_SERVER_OPTIONS = {
  tlsCert: {
    type: "string",
    default: "",
    env: "TLS_CERT",
    valueName: "FILE",
    description: "serve over TLS with this PEM certificate (chain); needs --tls-key",
  },
  tlsKey: {
    type: "string",
    default: "",
    env: "TLS_KEY",
    valueName: "FILE",
    description: "the PEM private key of --tls-cert",
  },
} as const satisfies OptionSpecs;

/** `--tls` and `--ca` as both clients declare them. */
export const TLS_CLIENT_OPTIONS = {
  tls: {
    type: "boolean",
    default: false,
    description: "connect over TLS (the server runs with --tls-cert)",
  },
  ca: {
    type: "string",
    default: "",
    valueName: "FILE",
    description: "trust this PEM certificate too (a self-signed server's cert.pem); implies --tls",
  },
} as const satisfies OptionSpecs;

/** The log levels, quietest last. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

/** `--log-level` and `--quiet` as every server declares them. */
export const LOG_OPTIONS = {
  logLevel: {
    type: "string",
    default: "info",
    choices: LOG_LEVELS,
    env: "LOG_LEVEL",
    valueName: "LEVEL",
    description: "least important log line to print: debug, info, warn, error",
  },
  quiet: {
    type: "boolean",
    default: false,
    short: "q",
    description: "print only errors (same as --log-level error)",
  },
} as const satisfies OptionSpecs;

/** Turns `maxBytes` into `max-bytes`. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/**
 * Parses `args` against `spec`, filling gaps from the environment, then `.env`, then the
 * defaults. Throws {@linkcode UsageError} on an unknown flag or a bad value.
 */
export function parseCommand<S extends OptionSpecs>(
  spec: CommandSpec<S>,
  args: readonly string[],
  sources: ConfigSources,
): ParsedCommand<S> {
  const parsed = parseFlags(spec, args);
  const values: Record<string, string | number | boolean> = {};
  for (const [key, option] of Object.entries(spec.options)) {
    values[key] = resolveOption(key, option, parsed.flags[key], sources);
  }
  return {
    values: values as ConfigValues<S>,
    positionals: parsed.positionals,
    help: parsed.flags.help === true,
    version: parsed.flags.version === true,
  };
}

type FlagValue = string | boolean | undefined;

function parseFlags<S extends OptionSpecs>(
  spec: CommandSpec<S>,
  args: readonly string[],
): { flags: Record<string, FlagValue>; positionals: string[] } {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
    version: { type: "boolean", short: "V" },
  };
  for (const [key, option] of Object.entries(spec.options)) {
    if (option.envOnly) continue;
    options[flagName(key)] = {
      type: option.type === "boolean" ? "boolean" : "string",
      ...(option.short ? { short: option.short } : {}),
    };
  }
  let result;
  try {
    result = parseArgs({
      args: [...args],
      options,
      strict: true,
      allowPositionals: spec.positionals ?? false,
    });
  } catch (error) {
    throw new UsageError(describeParseArgsError(error));
  }
  const flags: Record<string, FlagValue> = {
    help: result.values.help as FlagValue,
    version: result.values.version as FlagValue,
  };
  for (const [key, option] of Object.entries(spec.options)) {
    if (!option.envOnly) flags[key] = result.values[flagName(key)] as FlagValue;
  }
  return { flags, positionals: result.positionals };
}

function describeParseArgsError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: string }).code;
  const quoted = message.match(/'([^']+)'/)?.[1] ?? "";
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown flag ${quoted}`;
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return `unexpected argument '${quoted}'`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return message.includes("argument missing")
        ? `${quoted.replace(/ <value>$/, "").replace(/^-\w, /, "")} needs a value`
        : `${quoted} takes no value`;
    default:
      return message.split(". ")[0];
  }
}

function resolveOption(
  key: string,
  option: OptionSpec,
  flag: FlagValue,
  sources: ConfigSources,
): string | number | boolean {
  if (flag !== undefined) {
    // A boolean flag is already a boolean; a valued flag is validated like any other text.
    return typeof flag === "boolean" ? flag : convert(option, flag, `--${flagName(key)}`);
  }
  if (option.env) {
    const fromEnv = sources.env(option.env);
    if (fromEnv !== undefined) {
      return convert(option, fromEnv, `${option.env} (environment)`);
    }
    const fromFile = sources.dotenv[option.env];
    if (fromFile !== undefined) return convert(option, fromFile, `${option.env} (.env)`);
  }
  return option.default;
}

const INTEGER = /^\d+$/;
const DECIMAL = /^\d+(\.\d+)?$/;
const TRUE_WORDS = ["1", "true", "yes", "on"];
const FALSE_WORDS = ["0", "false", "no", "off"];

/** Validates one textual value; `source` names where it came from, for the error line. */
function convert(option: OptionSpec, raw: string, source: string): string | number | boolean {
  const text = raw.trim();
  switch (option.type) {
    case "boolean": {
      const word = text.toLowerCase();
      if (TRUE_WORDS.includes(word)) return true;
      if (FALSE_WORDS.includes(word)) return false;
      throw new UsageError(`${source}: '${raw}' is not on/off (use true or false)`);
    }
    case "integer":
    case "number": {
      const pattern = option.type === "integer" ? INTEGER : DECIMAL;
      const value = Number(text);
      if (!pattern.test(text) || value < option.min || value > option.max) {
        const kind = option.type === "integer" ? "a whole number" : "a number";
        throw new UsageError(
          `${source}: '${raw}' is not ${kind} from ${option.min} to ${option.max}`,
        );
      }
      return value;
    }
    case "string": {
      if (text === "") throw new UsageError(`${source}: must not be empty`);
      const value = option.choices ? text.toLowerCase() : text;
      if (option.choices && !option.choices.includes(value)) {
        throw new UsageError(
          `${source}: '${raw}' is not one of ${option.choices.join(", ")}`,
        );
      }
      return value;
    }
  }
}

/**
 * Parses the text of a `.env` file. Blank lines and `#` comments are skipped; every other line
 * must be `KEY=VALUE` (optionally `export KEY=VALUE`, values optionally quoted, double-quoted
 * values may span lines). Throws {@linkcode UsageError} naming the first malformed line.
 */
export function parseDotEnv(text: string, fileName = ".env"): Record<string, string> {
  const lines = text.split(/\r?\n/);
  let openQuote: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (openQuote !== null) {
      if (line.includes(openQuote)) openQuote = null;
      continue;
    }
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const match = trimmed.match(/^(?:export\s+)?[A-Za-z_][A-Za-z0-9_.]*\s*=\s*(.*)$/);
    if (!match) {
      throw new UsageError(`${fileName} line ${i + 1}: expected KEY=VALUE, got '${trimmed}'`);
    }
    const value = match[1];
    const quote = value[0];
    if ((quote === '"' || quote === "'" || quote === "`") && !value.slice(1).includes(quote)) {
      openQuote = quote;
    }
  }
  if (openQuote !== null) throw new UsageError(`${fileName}: unterminated ${openQuote} quote`);
  const table: Record<string, string> = {};
  for (const [key, value] of Object.entries(parseEnv(text))) {
    if (value !== undefined) table[key] = value;
  }
  return table;
}

/**
 * Reads `.env` from the working directory when the process may read it. A missing file, or
 * no permission to read it, gives an empty table without asking; a malformed file throws.
 */
export function loadDotEnv(path = ".env"): Record<string, string> {
  if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return {};
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return {};
    throw new UsageError(`${path}: cannot be read (${(error as Error).message})`);
  }
  return parseDotEnv(text, path);
}

/** Reads an environment variable only when permitted, so Deno never stops to prompt. */
export function readPermittedEnv(name: string): string | undefined {
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
    return undefined;
  }
  return Deno.env.get(name);
}

/** The real sources: the process environment and `./.env`, both only where permitted. */
export function processSources(): ConfigSources {
  return { env: readPermittedEnv, dotenv: loadDotEnv() };
}

/** Renders the `--help` text of a role. */
export function helpText<S extends OptionSpecs>(spec: CommandSpec<S>): string {
  const rows: [string, string][] = [
    ["-h, --help", "show this help and exit"],
    ["-V, --version", "print the version and exit"],
  ];
  const envOnly: string[] = [];
  for (const [key, option] of Object.entries(spec.options)) {
    if (option.envOnly) {
      envOnly.push(`  ${option.env}  ${option.description}`);
      continue;
    }
    const names = (option.short ? `-${option.short}, ` : "    ") + `--${flagName(key)}`;
    const value = option.type === "boolean" ? "" : ` ${option.valueName ?? "N"}`;
    const extras = [
      option.type === "boolean" || option.default === "" ? "" : `default ${option.default}`,
      option.env ? `env ${option.env}` : "",
    ].filter(Boolean).join("; ");
    rows.push([names + value, option.description + (extras ? ` (${extras})` : "")]);
  }
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  const out = [
    spec.summary,
    "",
    "Usage:",
    ...spec.usage.map((line) => `  ${line}`),
    "",
    "Options:",
    ...rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`),
  ];
  if (envOnly.length) out.push("", "Environment only (or .env):", ...envOnly);
  if (spec.notes?.length) out.push("", ...spec.notes);
  if (spec.examples?.length) out.push("", "Examples:", ...spec.examples.map((e) => `  ${e}`));
  out.push(
    "",
    "Settings are taken from flags, then the environment, then ./.env, then the defaults.",
  );
  return out.join("\n") + "\n";
}
