/* sluicectl.c - in progress */
int main(void)
{
	return 1;
}
