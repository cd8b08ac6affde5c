// The low-level syntax tree, shaped like BuildKit's parser.Node.

/** A here-document attached to a RUN/COPY/ADD line. */
export interface Heredoc {
  /** The terminator word with quotes removed. */
  name: string;
  /** The `3` in `3<<EOF`; 0 when absent. */
  fileDescriptor: number;
  /** False when any part of the name was quoted (`<<'EOF'`, `<<E"O"F`). */
  expand: boolean;
  /** `<<-EOF`: leading tabs are stripped from the body and the terminator. */
  chomp: boolean;
  /** The raw body, every line with its newline, tabs not yet stripped. */
  content: string;
}

/**
 * One instruction (or the root). `next` holds the arguments as BuildKit
 * stores them in its Next chain; ONBUILD keeps its trigger in `subcommand`.
 */
export interface Node {
  /** Lowercase keyword (`run`, `copy`, ...); '' for the root. */
  value: string;
  /** The logical line as read (continuations joined), flags included. */
  original: string;
  /** Raw `--name[=value]` flags, in order, `--` dropped. */
  flags: string[];
  /** Arguments (for ENV/LABEL: key, value, separator triples). */
  next: string[];
  /** ONBUILD only: the nested instruction. */
  subcommand?: Node;
  /** Root only: the instructions. */
  children: Node[];
  heredocs: Heredoc[];
  /** The arguments came from a JSON array (exec form). */
  json: boolean;
  /** 1-based first and last physical line (heredoc bodies included). */
  startLine: number;
  endLine: number;
  /** Comment lines directly above the instruction (without `#`). */
  comments: string[];
}

export interface Directives {
  syntax?: string;
  /** The escape token: `\` or a backtick. */
  escape: string;
  check?: string;
}

export interface ParseResult {
  ast: Node;
  directives: Directives;
  warnings: string[];
}
