"""Reference solutions of the notebooks' exercises, one module per notebook (``exNN.py``).

Try the exercise first; the grader cell says what is wrong.  To look:
``%load solutions/ex01.py`` in a cell, or ``from solutions.ex01 import g, g_prime``."""
