/* A shared library that is not a Ferry plugin: it lacks the entry symbol. */
int ferry_not_a_plugin(void);
int ferry_not_a_plugin(void) { return 42; }
