/* A shared library that is not an operator at all. */
int not_an_operator(void) { return 42; }
