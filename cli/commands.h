/* commands.h — the subcommands of the dashi program, one function each.
 *
 * main.c dispatches argv[1] through a table of these; every command parses its own
 * options, prints --help, and returns the process exit status (0 ok, 1 failure,
 * 2 usage error).
 */
#ifndef DASHI_COMMANDS_H
#define DASHI_COMMANDS_H

int dashi_cmd_replay(int argc, char **argv);   /* cli/cmd_replay.c */
int dashi_cmd_scenario(int argc, char **argv); /* cli/cmd_scenario.c */
int dashi_cmd_rules(int argc, char **argv);    /* cli/cmd_rules.c */
int dashi_cmd_schemas(int argc, char **argv);  /* cli/cmd_schemas.c */
int dashi_cmd_gen(int argc, char **argv);      /* cli/cmd_gen.c */
int dashi_cmd_devcluster(int argc, char **argv); /* cli/cmd_devcluster.c */
int dashi_cmd_publish(int argc, char **argv);  /* cli/cmd_publish.c */
int dashi_cmd_tail(int argc, char **argv);     /* cli/cmd_tail.c */
int dashi_cmd_config(int argc, char **argv);   /* cli/cmd_config.c */
int dashi_cmd_run(int argc, char **argv);      /* cli/cmd_run.c */
int dashi_cmd_summary(int argc, char **argv);  /* cli/cmd_summary.c */
int dashi_cmd_explain(int argc, char **argv);  /* cli/cmd_explain.c */
int dashi_cmd_whatif(int argc, char **argv);   /* cli/cmd_whatif.c */
int dashi_cmd_inspect(int argc, char **argv);  /* cli/cmd_inspect.c */

#endif
