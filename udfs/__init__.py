"""Python UDFs: pure, typed functions first; thin PyFlink wrappers around them."""
